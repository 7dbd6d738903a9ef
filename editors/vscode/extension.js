'use strict';
// spark-ls for VS Code: starts the spark-ls server bundled in this extension (bundled/, built by
// scripts/bundle.py) with the user's Python interpreter (the Python extension's selection, or
// spark.pythonPath), over stdio with vscode-languageclient, and adds the few things an editor
// needs around it (API key in SecretStorage, instruction edits, status bar, Show Prompt).

const vscode = require('vscode');
const { LanguageClient, State, RevealOutputChannelOn, ExecuteCommandRequest, TransportKind } = require('vscode-languageclient/node');
const server = require('./lib/server');
const nextEdit = require('./lib/nextEdit');

const CLIENT_ID = 'spark';
const SECRET_KEY = 'spark.openaiApiKey';
const LANGUAGES = ['python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust', 'java', 'c', 'cpp'];

/** @type {LanguageClient | undefined} */
let client;
/** @type {vscode.LogOutputChannel} */
let output;
/** @type {vscode.StatusBarItem} */
let statusItem;
/** @type {vscode.ExtensionContext} */
let extensionContext;
let lifecycle = Promise.resolve(); // start/stop/restart run one at a time
let lastStatus = { state: 'stopped', model: undefined, latencyMs: undefined };

function log(message) {
  output.info(server.redact(message));
}

// ----- status bar ---------------------------------------------------------------------------------

// States: `starting` / `stopped` (the client's lifecycle), `ready` / `working` / `error` (the
// server's spark/status notification; `working` carries the running action's title).
function renderStatus() {
  const { state, model, latencyMs, detail, action } = lastStatus;
  const latency = typeof latencyMs === 'number' ? ` · ${Math.round(latencyMs)} ms` : '';
  const modelText = model ? ` ${model}` : '';
  let icon = '$(zap)';
  let background;
  let text = `spark-ls${modelText}${latency}`;
  switch (state) {
    case 'starting':
      icon = '$(sync~spin)';
      break;
    case 'working':
      icon = '$(loading~spin)';
      text = `spark-ls: ${action || 'working'}…`;
      break;
    case 'error':
      icon = '$(error)';
      background = new vscode.ThemeColor('statusBarItem.errorBackground');
      break;
    case 'stopped':
      icon = '$(circle-slash)';
      break;
    default:
      break;
  }
  statusItem.text = `${icon} ${text}`;
  statusItem.backgroundColor = background;
  const lines = [`spark-ls: ${state}${state === 'working' && action ? ` (${action})` : ''}`];
  if (model) lines.push(`model: ${model}`);
  if (typeof latencyMs === 'number') lines.push(`last action: ${Math.round(latencyMs)} ms`);
  if (lastStatus.server) lines.push(`server: ${lastStatus.server}`);
  if (detail) lines.push(detail);
  lines.push('', 'Click to show the log');
  statusItem.tooltip = lines.join('\n');
  statusItem.show();
}

function setStatus(update) {
  lastStatus = Object.assign({}, lastStatus, update);
  renderStatus();
}

// ----- the language client -------------------------------------------------------------------------

function readSettings() {
  const cfg = vscode.workspace.getConfiguration('spark');
  const read = (key) => {
    const info = cfg.inspect(key) || {};
    const explicit = [info.globalValue, info.workspaceValue, info.workspaceFolderValue,
      info.globalLanguageValue, info.workspaceLanguageValue, info.workspaceFolderLanguageValue]
      .some((v) => v !== undefined);
    return { value: cfg.get(key), explicit };
  };
  return {
    serverPath: cfg.get('serverPath') || '',
    pythonPath: cfg.get('pythonPath') || '',
    importStrategy: cfg.get('importStrategy') || 'useBundled',
    initializationOptions: server.initializationOptions(read),
  };
}

// ----- the user's interpreter, from the Python extension (ms-python.python) when it is installed ---

function pythonApi() {
  const ext = vscode.extensions.getExtension('ms-python.python');
  return ext;
}

async function pythonFromExtension() {
  const ext = pythonApi();
  if (!ext) return undefined;
  try {
    if (!ext.isActive) await ext.activate();
    const environments = ext.exports && ext.exports.environments;
    if (!environments) return undefined;
    const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
    const active = environments.getActiveEnvironmentPath(folder ? folder.uri : undefined);
    const env = await environments.resolveEnvironment(active);
    const exe = env && env.executable && env.executable.uri && env.executable.uri.fsPath;
    if (!exe) return undefined;
    const v = env.version;
    return { path: exe, version: v && typeof v.major === 'number' ? [v.major, v.minor] : undefined };
  } catch (err) {
    log(`the Python extension did not give an interpreter: ${err && err.message ? err.message : err}`);
    return undefined;
  }
}

function watchPythonExtension(context) {
  const ext = pythonApi();
  if (!ext) return;
  Promise.resolve(ext.isActive ? undefined : ext.activate()).then(() => {
    const environments = ext.exports && ext.exports.environments;
    if (environments && environments.onDidChangeActiveEnvironmentPath) {
      context.subscriptions.push(environments.onDidChangeActiveEnvironmentPath(() => restart('Python interpreter changed')));
    }
  }, () => undefined);
}

async function startClient() {
  const settings = readSettings();
  const apiKey = await extensionContext.secrets.get(SECRET_KEY);
  const env = server.serverEnv(process.env, apiKey);
  setStatus({ state: 'starting', detail: undefined, action: undefined });
  const cmd = await server.resolveServer(Object.assign({
    extensionPath: extensionContext.extensionPath,
    pythonFromExtension: settings.serverPath || settings.pythonPath ? undefined : await pythonFromExtension(),
  }, settings), env);
  if (cmd.error) {
    setStatus({ state: 'error', detail: cmd.error, latencyMs: undefined });
    log(cmd.error);
    showStartError(cmd.error);
    return undefined;
  }
  Object.assign(env, cmd.env);
  log(`starting ${cmd.command} ${cmd.args.join(' ')} [${cmd.source}] (API key: ${apiKey ? 'from Spark: Set API key' : env.OPENAI_API_KEY ? 'from OPENAI_API_KEY' : 'none'}; options: ${JSON.stringify(settings.initializationOptions)})`);
  setStatus({ server: cmd.source });

  const serverOptions = {
    command: cmd.command,
    args: cmd.args,
    transport: TransportKind.stdio,
    options: { env },
  };
  const clientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: 'file', language },
      { scheme: 'untitled', language },
    ]),
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: settings.initializationOptions,
    // Do not retry a failed `initialize`; start() then rejects and the error is shown once, below.
    initializationFailedHandler: () => false,
  };
  const candidate = new LanguageClient(CLIENT_ID, 'spark-ls', serverOptions, clientOptions);
  // Inline completions (LSP 3.18 textDocument/inlineCompletion) are one of vscode-languageclient
  // 11's default features (InlineCompletionItemFeature): it announces the capability and, when the
  // server advertises inlineCompletionProvider, registers VS Code's inline completion provider.
  candidate.onDidChangeState((event) => {
    if (candidate !== client) return;
    if (event.newState === State.Running) setStatus({ state: 'ready' });
    else if (event.newState === State.Starting) setStatus({ state: 'starting' });
    else if (event.newState === State.Stopped) setStatus({ state: 'stopped', latencyMs: undefined });
  });
  candidate.onNotification('spark/status', (params) => {
    if (candidate !== client || !params) return;
    setStatus({
      state: params.state || lastStatus.state,
      action: params.action || undefined,
      model: params.model || lastStatus.model,
      latencyMs: typeof params.latencyMs === 'number' ? params.latencyMs : lastStatus.latencyMs,
      detail: params.message ? server.redact(params.message) : undefined,
    });
  });
  client = candidate;
  try {
    await candidate.start();
    const caps = (candidate.initializeResult && candidate.initializeResult.capabilities) || {};
    log(`spark-ls is running (inline completions: ${caps.inlineCompletionProvider ? 'on' : 'not offered by the server'})`);
  } catch (err) {
    const message = server.describeStartError(err, cmd.command);
    log(message);
    setStatus({ state: 'error', detail: message });
    showStartError(message);
  }
  return candidate;
}

async function stopClient() {
  const current = client;
  client = undefined;
  if (!current) return;
  try {
    if (current.isRunning()) await current.stop(5000);
  } catch (err) {
    log(`stopping spark-ls: ${err && err.message ? err.message : err}`);
  }
  try {
    await current.dispose();
  } catch (_) {
    // already gone
  }
}

function enqueue(task) {
  lifecycle = lifecycle.then(task, task);
  return lifecycle;
}

function restart(reason) {
  return enqueue(async () => {
    if (reason) log(`restarting spark-ls: ${reason}`);
    await stopClient();
    await startClient();
  });
}

function showStartError(message) {
  vscode.window.showErrorMessage(message, 'Open Settings', 'Show Log').then((choice) => {
    if (choice === 'Open Settings') vscode.commands.executeCommand('workbench.action.openSettings', 'spark.');
    else if (choice === 'Show Log') output.show(true);
  });
}

// ----- commands -------------------------------------------------------------------------------------

async function setApiKey() {
  const key = await vscode.window.showInputBox({
    title: 'Spark: Set API key',
    prompt: 'OpenAI API key (stored in VS Code\'s secret storage, passed to spark-ls as OPENAI_API_KEY)',
    password: true,
    ignoreFocusOut: true,
    placeHolder: 'sk-...',
  });
  if (key === undefined) return;
  if (!key.trim()) {
    vscode.window.showWarningMessage('Spark: empty key ignored. Use "Spark: Clear API key" to remove the stored key.');
    return;
  }
  await extensionContext.secrets.store(SECRET_KEY, key.trim());
  // secrets.onDidChange restarts the client; say so without echoing the key.
  vscode.window.showInformationMessage('Spark: API key saved; restarting spark-ls.');
}

async function clearApiKey() {
  await extensionContext.secrets.delete(SECRET_KEY);
  vscode.window.showInformationMessage('Spark: API key removed; restarting spark-ls.');
}

async function runningClient() {
  await lifecycle;
  if (!client || !client.isRunning()) await restart('needed for a command');
  if (!client || !client.isRunning()) {
    throw new Error('spark-ls is not running (see "Spark: Show Log").');
  }
  return client;
}

async function editWithInstruction() {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    vscode.window.showWarningMessage('Spark: open a file and select the code to edit first.');
    return;
  }
  const instruction = await vscode.window.showInputBox({
    title: 'Spark: Edit with Instruction',
    prompt: editor.selection.isEmpty ? 'What should change around the cursor?' : 'What should change in the selection?',
    placeHolder: 'e.g. add type hints; handle the empty list; use pathlib',
    ignoreFocusOut: true,
  });
  if (!instruction || !instruction.trim()) return;
  let c;
  try {
    c = await runningClient();
  } catch (err) {
    vscode.window.showErrorMessage(`Spark: ${err.message}`);
    return;
  }
  const uri = c.code2ProtocolConverter.asUri(editor.document.uri);
  const range = c.code2ProtocolConverter.asRange(editor.selection);
  const started = Date.now();
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'Spark: editing…', cancellable: true },
      (_progress, token) => c.sendRequest(
        ExecuteCommandRequest.type,
        { command: 'spark.editWithInstruction', arguments: [uri, range, instruction.trim()] },
        token,
      ),
    );
    if (lastStatus.state === 'ready' && lastStatus.latencyMs === undefined) {
      setStatus({ latencyMs: Date.now() - started });
    }
  } catch (err) {
    const message = server.redact(err && err.message ? err.message : String(err));
    log(`Edit with Instruction failed: ${message}`);
    vscode.window.showErrorMessage(`Spark: ${message}`, 'Show Log').then((choice) => {
      if (choice === 'Show Log') output.show(true);
    });
  }
}

async function showPrompt() {
  let c;
  try {
    c = await runningClient();
  } catch (err) {
    vscode.window.showErrorMessage(`Spark: ${err.message}`);
    return;
  }
  const prompt = await c.sendRequest('spark/lastPrompt', null);
  const text = server.promptDocument(prompt);
  if (!text) {
    vscode.window.showInformationMessage('Spark: no action has asked the model yet.');
    return;
  }
  const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: text });
  await vscode.window.showTextDocument(doc, { preview: true });
}

// ----- next-edit suggestions (spark/nextEdit) ------------------------------------------------------

// After a pause in typing (lib/nextEdit.js DEBOUNCE_MS), and on "Spark: Predict Next Edit", the
// server predicts the next edit near the cursor. It is drawn as decorations: the replaced text
// struck through on a red background, and after each changed line what it becomes (`→ …`).
// Tab applies it (the server's minimal edits, as one undoable edit), Esc dismisses it; any other
// change to the document dismisses it too (it was predicted for the text as it was).
const nextEdits = {
  /** @type {{uri: string, version: number, edits: any[], range: any, newText: string, editor: vscode.TextEditor} | undefined} */
  pending: undefined,
  timer: undefined,
  seq: 0,
  removedType: undefined,
  noteType: undefined,
  applying: false,

  init(context) {
    this.removedType = vscode.window.createTextEditorDecorationType({
      backgroundColor: new vscode.ThemeColor('diffEditor.removedTextBackground'),
      textDecoration: 'line-through',
    });
    this.noteType = vscode.window.createTextEditorDecorationType({
      after: {
        color: new vscode.ThemeColor('editorGhostText.foreground'),
        backgroundColor: new vscode.ThemeColor('diffEditor.insertedTextBackground'),
        fontStyle: 'italic',
      },
    });
    context.subscriptions.push(
      this.removedType,
      this.noteType,
      vscode.commands.registerCommand('spark.nextEdit', () => this.request(vscode.window.activeTextEditor, true)),
      vscode.commands.registerCommand('spark.acceptNextEdit', () => this.accept()),
      vscode.commands.registerCommand('spark.dismissNextEdit', () => this.dismiss()),
      vscode.workspace.onDidChangeTextDocument((event) => this.changed(event)),
      vscode.window.onDidChangeActiveTextEditor(() => this.dismiss()),
      { dispose: () => clearTimeout(this.timer) },
    );
  },

  enabled(document) {
    return vscode.workspace.getConfiguration('spark', document.uri).get('inlineCompletion', true) !== false;
  },

  changed(event) {
    if (this.applying || event.contentChanges.length === 0) return;
    const editor = vscode.window.activeTextEditor;
    if (this.pending && event.document === this.pending.editor.document) this.dismiss();
    if (!editor || editor.document !== event.document) return;
    if (!LANGUAGES.includes(event.document.languageId) || !this.enabled(event.document)) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.request(editor, false), nextEdit.DEBOUNCE_MS);
  },

  async request(editor, explicit) {
    clearTimeout(this.timer);
    if (!editor) return;
    const c = client;
    if (!c || !c.isRunning()) {
      if (explicit) vscode.window.showWarningMessage('Spark: spark-ls is not running (see "Spark: Show Log").');
      return;
    }
    const seq = ++this.seq;
    const document = editor.document;
    const version = document.version;
    const uri = c.code2ProtocolConverter.asUri(document.uri);
    let result;
    try {
      result = await c.sendRequest(nextEdit.METHOD, nextEdit.requestParams(uri, editor.selection.active));
    } catch (err) {
      const message = server.redact(err && err.message ? err.message : String(err));
      log(`next edit: ${message}`);
      if (explicit) vscode.window.showInformationMessage(`Spark: no next edit (${message})`);
      return;
    }
    // A newer request, an edit or another editor since: this prediction is for a text that is gone.
    if (seq !== this.seq || document.version !== version || vscode.window.activeTextEditor !== editor) return;
    if (!nextEdit.isValidResult(result, document.lineCount) || result.version !== version) {
      if (explicit) vscode.window.showInformationMessage('Spark: no next edit here.');
      return;
    }
    this.show(editor, result);
  },

  show(editor, result) {
    const lines = [];
    for (let i = 0; i < editor.document.lineCount; i++) lines.push(editor.document.lineAt(i).text);
    const plan = nextEdit.renderPlan(lines, result);
    editor.setDecorations(this.removedType, plan.removed.map((r) => new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character)));
    editor.setDecorations(this.noteType, plan.annotations.map((a) => ({
      range: new vscode.Range(a.line, lines[a.line] ? lines[a.line].length : 0, a.line, lines[a.line] ? lines[a.line].length : 0),
      renderOptions: { after: { contentText: a.text } },
    })));
    this.pending = { uri: result.uri, version: result.version, edits: result.edits, range: result.range, newText: result.newText, editor };
    vscode.commands.executeCommand('setContext', 'spark.nextEditVisible', true);
  },

  dismiss() {
    clearTimeout(this.timer);
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    p.editor.setDecorations(this.removedType, []);
    p.editor.setDecorations(this.noteType, []);
    vscode.commands.executeCommand('setContext', 'spark.nextEditVisible', false);
  },

  async accept() {
    const p = this.pending;
    const c = client;
    const editor = vscode.window.activeTextEditor;
    if (!p || !c || !editor) return this.dismiss();
    const uri = c.code2ProtocolConverter.asUri(editor.document.uri);
    if (!nextEdit.stillApplies(p, uri, editor.document.version)) return this.dismiss();
    this.dismiss();
    const edit = new vscode.WorkspaceEdit();
    edit.set(editor.document.uri, await c.protocol2CodeConverter.asTextEdits(p.edits));
    this.applying = true;
    try {
      if (!(await vscode.workspace.applyEdit(edit))) log('next edit: VS Code refused the edit');
    } finally {
      this.applying = false;
    }
  },
};

// ----- activation -----------------------------------------------------------------------------------

async function activate(context) {
  extensionContext = context;
  // A log channel: vscode-languageclient 10+ writes its own messages and the LSP trace (level
  // Trace: "Developer: Set Log Level…" → spark-ls) with error()/info()/trace().
  output = vscode.window.createOutputChannel('spark-ls', { log: true });
  statusItem = vscode.window.createStatusBarItem('spark.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'spark-ls';
  statusItem.command = 'spark.showLog';
  context.subscriptions.push(output, statusItem);
  setStatus({ state: 'starting' });

  context.subscriptions.push(
    vscode.commands.registerCommand('spark.setApiKey', setApiKey),
    vscode.commands.registerCommand('spark.clearApiKey', clearApiKey),
    vscode.commands.registerCommand('spark.editWithInstructionPrompt', editWithInstruction),
    vscode.commands.registerCommand('spark.restartServer', () => restart('requested')),
    vscode.commands.registerCommand('spark.showLog', () => output.show(true)),
    vscode.commands.registerCommand('spark.showPrompt', showPrompt),
    context.secrets.onDidChange((event) => {
      if (event.key === SECRET_KEY) restart('API key changed');
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('spark') && !event.affectsConfiguration('spark.trace')) {
        restart('settings changed');
      }
    }),
  );
  nextEdits.init(context);
  watchPythonExtension(context);
  await enqueue(startClient);
}

async function deactivate() {
  await enqueue(stopClient);
}

module.exports = { activate, deactivate };
