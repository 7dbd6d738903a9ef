#!/usr/bin/env node
'use strict';
// Drives a running code-server (a real VS Code 1.100) through headless Chromium, with the keyboard,
// the way a user would: open a file, wait for spark-ls's squiggle, Ctrl+. on it, pick spark-ls's
// quick fix, Enter, Ctrl+S; then (optionally) "Spark: Edit with Instruction" from the command palette.
//
// Usage: node drive.js plan.json
// plan.json: {
//   "url": "http://127.0.0.1:PORT/?folder=/abs/workspace",
//   "file": "buggy.py",                       // opened with Ctrl+P
//   "cursor": {"line": 3, "column": 10},      // 1-based; where the bug is
//   "fixTitle": "Fix:",                       // the quick fix to pick: first row whose text contains this
//   "screenshot": "/abs/quickfix.png",        // the open lightbulb menu
//   "failureScreenshot": "/abs/failure.png",
//   "instruction": {"fromLine": 6, "toLine": 7, "text": "..."},  // optional: Spark: Edit with Instruction
//   "apiKey": "...",                          // optional: first run "Spark: Set API key" with this key
//   "expectError": "spark-ls is not installed",  // optional: only wait for this error notification
//   "inline": {"line": 2, "column": 12, "type": "a"},  // optional: type there, wait for ghost text, Tab, Ctrl+S
//   "nextEdit": {"line": 1, "column": 11, "type": "e", "expect": "surface(2, 3)", "path": "/abs/file"},
//       // optional: type there; wait for the next-edit decoration containing `expect`; Esc
//       // dismisses it (saved, the file reported); "Spark: Predict Next Edit"; Tab accepts it; saved
//   "timeoutMs": 60000
// }
// Prints one JSON object per step on stdout; the last line is {"done": true, ...}. Exit code 0 on success.

const fs = require('fs');
const { chromium } = require('playwright-core');

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const TIMEOUT = plan.timeoutMs || 60000;
const CHROMIUM = plan.chromium || '/usr/bin/chromium';

const T0 = Date.now();
function report(step, extra = {}) {
  process.stdout.write(JSON.stringify(Object.assign({ step, ms: Date.now() - T0 }, extra)) + '\n');
}

async function focusedRowText(page) {
  return page.evaluate(() => {
    const row = document.querySelector('.action-widget .monaco-list-row.focused');
    return row ? row.textContent : null;
  });
}

async function rowTexts(page) {
  return page.$$eval('.action-widget .monaco-list-row', (rows) => rows.map((r) => r.textContent));
}

async function goTo(page, line, column) {
  // Ctrl+Home is (1, 1); arrow keys from there: no dialogs, no mouse.
  await page.keyboard.press('Control+Home');
  for (let i = 1; i < line; i++) await page.keyboard.press('ArrowDown');
  for (let i = 1; i < column; i++) await page.keyboard.press('ArrowRight');
  // The status bar's "Ln X, Col Y" catches up asynchronously; wait for it to say where we are.
  await page.waitForFunction(
    ([l, c]) => {
      const el = document.getElementById('status.editor.selection');
      return !!el && new RegExp(`Ln ${l}, Col ${c}\\b`).test(el.textContent || '');
    },
    [line, column],
    { timeout: 10000 },
  ).catch(() => {});
}

async function cursorPosition(page) {
  const text = await page.textContent('#status\\.editor\\.selection').catch(() => null);
  const m = text && /Ln (\d+), Col (\d+)/.exec(text);
  return m ? { line: Number(m[1]), column: Number(m[2]) } : null;
}

async function waitDirty(page, file, dirty) {
  const selector = `.tabs-container .tab${dirty ? '.dirty' : ':not(.dirty)'}[aria-label*="${file}"]`;
  await page.waitForSelector(selector, { timeout: TIMEOUT });
}

async function save(page, file) {
  await page.keyboard.press('Control+S');
  await waitDirty(page, file, false);
}

async function runCommand(page, title) {
  // Ctrl+Shift+P, the command's title, Enter on the matching entry. Right after start-up the
  // palette may open before the extension's contributions are registered: close it and retry.
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('Control+Shift+P');
    await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) input', { timeout: TIMEOUT });
    await page.keyboard.type(title);
    try {
      await page.waitForSelector(`.quick-input-list .monaco-list-row.focused:has-text("${title}")`,
        { timeout: attempt < 6 ? 5000 : TIMEOUT });
      break;
    } catch (err) {
      if (attempt >= 6) throw err;
      report('palette-retry', { title, attempt });
      await page.keyboard.press('Escape');
      await page.waitForSelector('.quick-input-widget input', { state: 'hidden', timeout: TIMEOUT });
    }
  }
  await page.keyboard.press('Enter');
}

async function waitNotification(page, text) {
  const selector = `.notifications-toasts .notification-list-item-message:has-text("${text}")`;
  await page.waitForSelector(selector, { timeout: TIMEOUT });
  return (await page.textContent(selector)).trim();
}

// Texts VS Code draws from decorations' before/after contentText (CSS ::before/::after content).
async function decorationTexts(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('.monaco-editor .view-lines span')) {
      for (const pseudo of ['::before', '::after']) {
        const c = getComputedStyle(el, pseudo).content;
        if (c && c !== 'none' && c !== 'normal') out.push(c);
      }
    }
    return out;
  });
}

async function waitDecoration(page, expect, present) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const texts = await decorationTexts(page);
    const found = texts.filter((t) => t.includes(expect));
    if (present ? found.length : !found.length) return texts; // all of them: the hint is on the last line
    if (Date.now() > deadline) throw new Error(`decoration ${JSON.stringify(expect)} ${present ? 'never shown' : 'still shown'}; decorations: ${JSON.stringify(texts)}`);
    await page.waitForTimeout(100);
  }
}

// spark-ls's status item says "ready" ($(zap) icon): initialize is done, its providers registered.
async function waitSpark(page) {
  await page.waitForFunction(() => [...document.querySelectorAll('.statusbar-item')]
    .some((el) => el.id.endsWith('spark.status') && !!el.querySelector('.codicon-zap')), null, { timeout: TIMEOUT });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 620 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // The workbench's console (e.g. "editor.inlineSuggest.logFetch": true writes the inline
  // completion fetches there): reported on failure, and with plan.console at the end.
  const consoleLines = [];
  page.on('console', (msg) => { if (consoleLines.length < 400) consoleLines.push(`${msg.type()}: ${msg.text()}`.slice(0, 800)); });
  try {
    await page.goto(plan.url, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('.monaco-workbench', { timeout: TIMEOUT });
    await page.waitForSelector('.explorer-folders-view, .explorer-viewlet, .pane-body', { timeout: TIMEOUT });
    report('workbench');

    if (plan.apiKey) {
      // "Spark: Set API key" from the command palette; the key goes into a password input box.
      await runCommand(page, 'Spark: Set API key');
      await page.waitForSelector('.quick-input-widget .quick-input-title:has-text("Set API key")', { timeout: TIMEOUT });
      await page.keyboard.type(plan.apiKey);
      await page.keyboard.press('Enter');
      await waitNotification(page, 'API key saved');
      report('api-key-set');
    }

    // Open the file with Quick Open.
    await page.locator('.monaco-workbench').focus().catch(() => {});
    await page.keyboard.press('Control+P');
    await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) input', { timeout: TIMEOUT });
    await page.keyboard.type(plan.file);
    await page.waitForSelector('.quick-input-list .monaco-list-row', { timeout: TIMEOUT });
    await page.keyboard.press('Enter');
    await page.waitForSelector(`.tabs-container .tab[aria-label*="${plan.file}"]`, { timeout: TIMEOUT });
    await page.waitForSelector('.monaco-editor .view-lines', { timeout: TIMEOUT });
    report('opened', { file: plan.file });

    if (plan.inline) {
      // Inline completion (ghost text): cursor at the end of a line, type, wait for the ghost text
      // (Monaco's .ghost-text-decoration), screenshot, Tab accepts, Ctrl+S saves.
      const inl = plan.inline;
      await page.click('.monaco-editor .view-lines', { position: { x: 5, y: 5 } }).catch(() => {});
      await goTo(page, inl.line, inl.column);
      report('cursor', { at: await cursorPosition(page) });
      // The provider exists once the server is up: wait for the extension's status item.
      await waitSpark(page);
      await page.keyboard.type(inl.type, { delay: 60 });
      const ghost = '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text';
      for (let attempt = 0; ; attempt++) {
        try {
          await page.waitForSelector(ghost, { timeout: attempt < 5 ? 8000 : TIMEOUT });
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
          report('ghost-retry', { attempt });
          await page.keyboard.press('Alt+Backslash'); // editor.action.inlineSuggest.trigger
        }
      }
      const shown = await page.$$eval(ghost, (els) => els.map((e) => e.textContent).join(''));
      report('ghost', { text: shown });
      if (plan.screenshot) {
        await page.screenshot({ path: plan.screenshot });
        report('screenshot', { path: plan.screenshot });
      }
      await page.keyboard.press('Tab');
      await page.waitForSelector(ghost, { state: 'detached', timeout: TIMEOUT });
      report('accepted');
      await save(page, plan.file);
      report('saved');
      report('done', { done: true });
      return;
    }

    if (plan.nextEdit) {
      // Next edit: an edit, a pause, the predicted edit drawn as decorations; Esc dismisses it
      // (nothing changes), "Spark: Predict Next Edit" shows it again, Tab applies it.
      const ne = plan.nextEdit;
      await page.click('.monaco-editor .view-lines', { position: { x: 5, y: 5 } }).catch(() => {});
      await goTo(page, ne.line, ne.column);
      report('cursor', { at: await cursorPosition(page) });
      await waitSpark(page);
      await page.keyboard.type(ne.type, { delay: 60 });
      const shown = await waitDecoration(page, ne.expect, true);
      report('next-edit-shown', { decorations: shown });
      if (plan.screenshot) {
        await page.screenshot({ path: plan.screenshot });
        report('screenshot', { path: plan.screenshot });
      }
      await page.keyboard.press('Escape');
      await waitDecoration(page, ne.expect, false);
      await save(page, plan.file);
      report('dismissed', { text: fs.readFileSync(ne.path, 'utf8') });
      await runCommand(page, 'Spark: Predict Next Edit');
      await page.waitForSelector('.quick-input-widget input', { state: 'hidden', timeout: TIMEOUT });
      const again = await waitDecoration(page, ne.expect, true);
      report('next-edit-shown-again', { decorations: again });
      await page.keyboard.press('Tab');
      await waitDirty(page, plan.file, true);
      await waitDecoration(page, ne.expect, false);
      await save(page, plan.file);
      report('accepted', { text: fs.readFileSync(ne.path, 'utf8') });
      report('done', { done: true });
      return;
    }

    if (plan.expectError) {
      const text = await waitNotification(page, plan.expectError);
      if (plan.screenshot) await page.screenshot({ path: plan.screenshot });
      report('done', { done: true, error: text });
      return;
    }

    // spark-ls's syntax-error diagnostic, drawn as a squiggle (no other extension makes diagnostics here).
    await page.waitForSelector('.monaco-editor .squiggly-error, .monaco-editor .squiggly-warning', { timeout: TIMEOUT });
    report('squiggle');

    // Cursor on the bug, then the lightbulb menu.
    await page.click('.monaco-editor .view-lines', { position: { x: 5, y: 5 } }).catch(() => {});
    await goTo(page, plan.cursor.line, plan.cursor.column);
    const at = await cursorPosition(page);
    report('cursor', { at });
    if (!at || at.line !== plan.cursor.line || at.column !== plan.cursor.column) {
      throw new Error(`cursor is at ${JSON.stringify(at)}, wanted ${JSON.stringify(plan.cursor)}`);
    }
    // The lightbulb lists what the server returned for this position; ask again if the first menu
    // came up before the diagnostics reached the code-action request.
    let rows = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      await page.keyboard.press('Control+Period');
      // Either the menu, or VS Code's "No code actions available" message over the cursor.
      await page.waitForSelector('.action-widget .monaco-list-row, .monaco-editor-overlaymessage', { timeout: TIMEOUT });
      if (!(await page.$('.action-widget .monaco-list-row'))) {
        const message = await page.textContent('.monaco-editor-overlaymessage').catch(() => null);
        report('menu-empty', { message });
        await page.keyboard.press('Escape');
        await page.waitForTimeout(1000);
        continue;
      }
      rows = await rowTexts(page);
      if (rows.some((t) => t.includes(plan.fixTitle))) break;
      report('menu-without-fix', { rows });
      await page.keyboard.press('Escape');
      await page.waitForSelector('.action-widget .monaco-list-row', { state: 'detached', timeout: TIMEOUT });
      await page.waitForTimeout(500);
    }
    report('menu', { rows });
    const target = rows.find((t) => t.includes(plan.fixTitle));
    if (!target) throw new Error(`no quick fix containing ${JSON.stringify(plan.fixTitle)} in ${JSON.stringify(rows)}`);
    if (plan.screenshot) {
      await page.screenshot({ path: plan.screenshot });
      report('screenshot', { path: plan.screenshot });
    }
    // Move the focus to the fix (keyboard only), then Enter.
    for (let i = 0; i < rows.length; i++) {
      const focused = await focusedRowText(page);
      if (focused && focused.includes(plan.fixTitle)) break;
      await page.keyboard.press('ArrowDown');
    }
    const chosen = await focusedRowText(page);
    if (!chosen || !chosen.includes(plan.fixTitle)) throw new Error(`could not focus the fix; focused: ${chosen}`);
    report('chosen', { title: chosen });
    // Watch the extension's status-bar item while the model works (spark/status "working").
    await page.evaluate(() => {
      window.__sparkSeen = [];
      window.__sparkWatch = setInterval(() => {
        const item = [...document.querySelectorAll('.statusbar-item')].find((el) => el.id.endsWith('spark.status'));
        const text = item ? (item.textContent || '').trim() : '';
        if (text && window.__sparkSeen[window.__sparkSeen.length - 1] !== text) window.__sparkSeen.push(text);
      }, 25);
    });
    await page.keyboard.press('Enter');
    await waitDirty(page, plan.file, true);
    const seen = await page.evaluate(() => { clearInterval(window.__sparkWatch); return window.__sparkSeen; });
    report('applied', { statusSeen: seen });
    await save(page, plan.file);
    report('saved');

    if (plan.instruction) {
      const ins = plan.instruction;
      await goTo(page, ins.fromLine, 1);
      for (let l = ins.fromLine; l <= ins.toLine; l++) await page.keyboard.press('Shift+ArrowDown');
      report('selected', { at: await cursorPosition(page) });
      await runCommand(page, 'Spark: Edit with Instruction');
      // The instruction input box (same quick-input widget, now with our title).
      await page.waitForSelector('.quick-input-widget .quick-input-title:has-text("Edit with Instruction")', { timeout: TIMEOUT });
      await page.keyboard.type(ins.text);
      await page.keyboard.press('Enter');
      await waitDirty(page, plan.file, true);
      report('instruction-applied');
      await save(page, plan.file);
      report('instruction-saved');
    }

    if (plan.showPrompt) {
      // "Spark: Show Prompt of the Last Action" opens the redacted prompt as an untitled Markdown document.
      await runCommand(page, 'Spark: Show Prompt of the Last Action');
      await page.waitForSelector('.monaco-editor .view-lines:has-text("spark-ls: last prompt")', { timeout: TIMEOUT });
      // Monaco renders only the visible lines: page through the document and keep every screen.
      const screens = [];
      for (let i = 0; i < 60; i++) {
        const screen = await page.evaluate(() => {
          const editor = document.activeElement && document.activeElement.closest('.monaco-editor');
          const lines = editor && editor.querySelector('.view-lines');
          return lines ? lines.innerText : '';
        });
        if (screens.length && screens[screens.length - 1] === screen) break;
        screens.push(screen);
        await page.keyboard.press('PageDown');
        await page.waitForTimeout(50);
      }
      report('prompt', { text: screens.join('\n') });
    }

    // The extension's status-bar item (its DOM id ends with the item id, "spark.status").
    const status = await page.evaluate(() => {
      const item = [...document.querySelectorAll('.statusbar-item')].find((el) => el.id.endsWith('spark.status'));
      return item ? (item.getAttribute('aria-label') || item.textContent || '').trim() : null;
    });
    report('done', { done: true, status });
  } catch (err) {
    if (plan.failureScreenshot) await page.screenshot({ path: plan.failureScreenshot }).catch(() => {});
    report('error', { error: String(err && err.stack ? err.stack : err) });
    report('console', { lines: consoleLines.filter((l) => !plan.consoleFilter || l.includes(plan.consoleFilter)).slice(-60) });
    process.exitCode = 1;
  } finally {
    if (plan.console) report('console-all', { lines: consoleLines.filter((l) => !plan.consoleFilter || l.includes(plan.consoleFilter)) });
    await browser.close();
  }
}

main().catch((err) => {
  report('error', { error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
});
