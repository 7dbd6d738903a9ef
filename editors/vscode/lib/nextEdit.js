'use strict';
// Pure helpers for next-edit suggestions (spark/nextEdit), no `vscode` import, so they can be
// tested with plain node (tests/test_vscode_next_edit.py runs editors/vscode/test/nextEdit.test.js).
//
// The server's result (spark_ls/server/next_edit.py): null, or
//   {uri, version, edits: [TextEdit], range: Range, newText, region}
// where `edits` are the minimal edits and `range`/`newText` the same change as one replacement.
// Positions are LSP positions in UTF-16 code units, the unit of JavaScript strings.

const METHOD = 'spark/nextEdit';
// Idle time after the last edit before the next edit is asked for (VS Code has no insert mode to
// leave, the moment Neovim's plugin uses).
const DEBOUNCE_MS = 800;
const HINT = 'Tab accepts, Esc dismisses';

/** Is `result` a usable next-edit result for a document with `lineCount` lines? */
function isValidResult(result, lineCount) {
  if (!result || typeof result !== 'object') return false;
  const { range, newText, edits } = result;
  const pos = (p) => p && Number.isInteger(p.line) && Number.isInteger(p.character) && p.line >= 0 && p.character >= 0;
  if (!range || !pos(range.start) || !pos(range.end) || typeof newText !== 'string') return false;
  if (!Array.isArray(edits) || edits.length === 0) return false;
  if (!edits.every((e) => e && e.range && pos(e.range.start) && pos(e.range.end) && typeof e.newText === 'string')) return false;
  const before = (a, b) => a.line < b.line || (a.line === b.line && a.character <= b.character);
  if (!before(range.start, range.end)) return false;
  return range.end.line < Math.max(lineCount, 1) + 1;
}

/**
 * What to draw for a next edit on a document whose lines are `lines` (without line breaks):
 * the replaced range (struck through), and after each old line of the range the line it becomes
 * (`→ new line`); new lines beyond the old ones are appended to the last line, joined with ` ⏎ `.
 * Returns {removed: [Range], annotations: [{line, text}], newLines: [string]}.
 */
function renderPlan(lines, result) {
  const { range, newText } = result;
  const first = range.start.line;
  const last = Math.min(range.end.line, Math.max(lines.length - 1, 0));
  const head = (lines[first] || '').slice(0, range.start.character);
  const tail = (lines[last] || '').slice(range.end.line > last ? (lines[last] || '').length : range.end.character);
  const newLines = (head + newText + tail).split(/\r?\n/);
  const annotations = [];
  const oldCount = last - first + 1;
  for (let i = 0; i < oldCount; i++) {
    const line = first + i;
    let text;
    if (i < oldCount - 1) {
      text = i < newLines.length ? newLines[i] : '(line removed)';
    } else {
      const rest = newLines.slice(i);
      text = rest.length ? rest.join(' ⏎ ') : '(line removed)';
    }
    if (text === (lines[line] || '') && i < oldCount - 1) continue; // an unchanged line inside the range
    annotations.push({ line, text: `  → ${text.trim() === '' ? '(empty line)' : text.trimStart()}` });
  }
  if (annotations.length) {
    const lastNote = annotations[annotations.length - 1];
    lastNote.text += `    spark-ls next edit: ${HINT}`;
  }
  // Struck through: only what the minimal edits replace (not the whole span between them).
  const removed = (result.edits || []).map((e) => e.range)
    .filter((r) => r.start.line !== r.end.line || r.start.character !== r.end.character);
  return { removed, annotations, newLines };
}

/** The document text after applying `edits` (LSP TextEdits, non-overlapping) to `text`. */
function applyEdits(text, edits) {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1);
  const offset = (p) => Math.min((lineStarts[p.line] === undefined ? text.length : lineStarts[p.line]) + p.character, text.length);
  const sorted = edits.map((e) => ({ start: offset(e.range.start), end: offset(e.range.end), newText: e.newText }))
    .sort((a, b) => b.start - a.start);
  let out = text;
  for (const e of sorted) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
}

/**
 * May a shown next edit still be applied? Only to the very text it was predicted for: the same
 * document at the same version (any edit since then dismisses it).
 */
function stillApplies(pending, uri, version) {
  return !!pending && pending.uri === uri && pending.version === version;
}

/** The request's params for a cursor at `position` in `uri` (the protocol's shapes). */
function requestParams(uri, position) {
  return { textDocument: { uri }, position: { line: position.line, character: position.character } };
}

module.exports = { METHOD, DEBOUNCE_MS, HINT, isValidResult, renderPlan, applyEdits, stillApplies, requestParams };
