'use strict';
// spark-ls for VS Code: starts `spark-ls serve` over stdio with vscode-languageclient and adds the
// few things an editor needs around it (API key in SecretStorage, instruction edits, status bar).

const vscode = require('vscode');
const { LanguageClient, State, RevealOutputChannelOn, ExecuteCommandRequest, TransportKind } = require('vscode-languageclient/node');
const server = require('./lib/server');

const CLIENT_ID = 'spark';
const SECRET_KEY = 'spark.openaiApiKey';
const LANGUAGES = ['python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust', 'java', 'c', 'cpp'];

/** @type {LanguageClient | undefined} */
let client;
/** @type {vscode.OutputChannel} */
let output;
/** @type {vscode.StatusBarItem} */
let statusItem;
/** @type {vscode.ExtensionContext} */
let extensionContext;
let lifecycle = Promise.resolve(); // start/stop/restart run one at a time
let lastStatus = { state: 'stopped', model: undefined, latencyMs: undefined };

function log(message) {
  output.appendLine(`[${new Date().toISOString()}] ${server.redact(message)}`);
}

// ----- status bar ---------------------------------------------------------------------------------

function renderStatus() {
  const { state, model, latencyMs, detail } = lastStatus;
  const latency = typeof latencyMs === 'number' ? ` · ${Math.round(latencyMs)} ms` : '';
  const modelText = model ? ` ${model}` : '';
  let icon = '$(zap)';
  let background;
  switch (state) {
    case 'starting':
    case 'connecting':
      icon = '$(sync~spin)';
      break;
    case 'working':
    case 'busy':
    case 'thinking':
      icon = '$(loading~spin)';
      break;
    case 'error':
    case 'failed':
    case 'not-installed':
      icon = '$(error)';
      background = new vscode.ThemeColor('statusBarItem.errorBackground');
      break;
    case 'stopped':
    case 'offline':
      icon = '$(circle-slash)';
      break;
    default:
      break;
  }
  statusItem.text = `${icon} spark-ls${modelText}${latency}`;
  statusItem.backgroundColor = background;
  const lines = [`spark-ls: ${state}`];
  if (model) lines.push(`model: ${model}`);
  if (typeof latencyMs === 'number') lines.push(`last action: ${Math.round(latencyMs)} ms`);
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
    serverPath: cfg.get('serverPath') || 'spark-ls',
    pythonPath: cfg.get('pythonPath') || '',
    initializationOptions: server.initializationOptions(read),
  };
}

async function startClient() {
  const settings = readSettings();
  const apiKey = await extensionContext.secrets.get(SECRET_KEY);
  const env = server.serverEnv(process.env, apiKey);
  const cmd = server.serverCommand(settings, env);
  if (cmd.error) {
    setStatus({ state: 'not-installed', detail: cmd.error, latencyMs: undefined });
    log(cmd.error);
    showStartError(cmd.error);
    return undefined;
  }
  log(`starting ${cmd.command} ${cmd.args.join(' ')} (API key: ${apiKey ? 'from Spark: Set API key' : env.OPENAI_API_KEY ? 'from OPENAI_API_KEY' : 'none'}; options: ${JSON.stringify(settings.initializationOptions)})`);
  setStatus({ state: 'starting', detail: undefined });

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
      model: params.model || lastStatus.model,
      latencyMs: typeof params.latencyMs === 'number' ? params.latencyMs : lastStatus.latencyMs,
      detail: params.message ? server.redact(params.message) : undefined,
    });
  });
  client = candidate;
  try {
    await candidate.start();
    log('spark-ls is running');
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

// ----- activation -----------------------------------------------------------------------------------

async function activate(context) {
  extensionContext = context;
  output = vscode.window.createOutputChannel('spark-ls');
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
    context.secrets.onDidChange((event) => {
      if (event.key === SECRET_KEY) restart('API key changed');
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('spark') && !event.affectsConfiguration('spark.trace')) {
        restart('settings changed');
      }
    }),
  );
  await enqueue(startClient);
}

async function deactivate() {
  await enqueue(stopClient);
}

module.exports = { activate, deactivate };
