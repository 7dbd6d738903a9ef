'use strict';
// Pure helpers (no `vscode` import) so they can be tested with plain node: which command starts
// spark-ls, with which environment and initializationOptions. Nothing here blocks: interpreters
// are probed with asynchronous child processes.

const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');

const MIN_PYTHON = [3, 11];

const INSTALL_HINT =
  'spark-ls is bundled with this extension and needs Python 3.11+: install Python (or the Python ' +
  'extension and select an interpreter), or set `spark.pythonPath`. To run your own installation ' +
  "instead (from a clone of spark-ls: `pipx install '.[local]'`), set `spark.serverPath`.";

// VS Code setting (under `spark.`) -> Settings field name in spark_ls/config.py: every server
// setting in package.json (generated from config.py by `python -m spark_ls.settings_schema --write`),
// not the extension's own settings.
const CLIENT_ONLY = new Set(['serverPath', 'pythonPath', 'importStrategy', 'trace.server']);
const INIT_OPTION_KEYS = Object.fromEntries(
  Object.keys(require('../package.json').contributes.configuration.properties)
    .map((key) => key.replace(/^spark\./, ''))
    .filter((key) => !CLIENT_ONLY.has(key))
    .map((key) => [key, key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())]),
);

/** Find `command` like a shell would: a path (absolute or with a separator) or a name on PATH. */
function findExecutable(command, env = process.env) {
  if (!command) return null;
  const isWin = process.platform === 'win32';
  const exts = isWin ? (env.PATHEXT || '.EXE;.CMD;.BAT;.COM').split(';').concat(['']) : [''];
  const candidates = [];
  if (path.isAbsolute(command) || command.includes('/') || (isWin && command.includes('\\'))) {
    for (const ext of exts) candidates.push(path.resolve(command + ext));
  } else {
    const dirs = (env.PATH || env.Path || '').split(path.delimiter).filter(Boolean);
    for (const dir of dirs) for (const ext of exts) candidates.push(path.join(dir, command + ext));
  }
  for (const candidate of candidates) {
    try {
      const st = fs.statSync(candidate);
      if (!st.isFile()) continue;
      if (!isWin) fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch (_) {
      // not this one
    }
  }
  return null;
}

/** Run a short child process without blocking the extension host. */
function execFileAsync(file, args, options) {
  return new Promise((resolve) => {
    childProcess.execFile(file, args, Object.assign({ timeout: 20000, encoding: 'utf8' }, options),
      (error, stdout, stderr) => resolve({ error, stdout: String(stdout || ''), stderr: String(stderr || '') }));
  });
}

/** [major, minor] of a Python interpreter, or null when it does not run. */
async function pythonVersion(exe, env = process.env) {
  const out = await execFileAsync(exe, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { env });
  const m = !out.error && /^(\d+)\.(\d+)\s*$/.exec(out.stdout);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function versionOk(version) {
  return !!version && (version[0] > MIN_PYTHON[0] || (version[0] === MIN_PYTHON[0] && version[1] >= MIN_PYTHON[1]));
}

/** What scripts/bundle.py put into the extension: {pythons: ['3.11', ...]} (empty when not bundled). */
function bundledManifest(extensionPath) {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(extensionPath, 'bundled', 'manifest.json'), 'utf8'));
    const script = path.join(extensionPath, 'bundled', 'tool', 'server.py');
    return fs.existsSync(script) ? Object.assign({ script }, manifest) : { pythons: [] };
  } catch (_) {
    return { pythons: [] };
  }
}

/**
 * The command line that starts the server, or a user-facing error message.
 *
 * Order (like Microsoft's Python-tool extensions): `spark.serverPath` (your own installation),
 * else the bundled server run by a Python 3.11+ interpreter: `spark.pythonPath`, else the
 * interpreter selected in the Python extension (`pythonFromExtension`), else `python3` / `python`
 * on PATH; else a `spark-ls` on PATH.
 *
 * @param {{serverPath?: string, pythonPath?: string, importStrategy?: string, extensionPath: string,
 *          pythonFromExtension?: {path: string, version?: number[]}}} cfg
 * @returns {Promise<{command: string, args: string[], env: object, source: string} | {error: string}>}
 */
async function resolveServer(cfg, env = process.env) {
  const serverPath = (cfg.serverPath || '').trim();
  if (serverPath) {
    const exe = findExecutable(serverPath, env);
    if (!exe) {
      return { error: `spark-ls is not installed: \`${serverPath}\` (setting spark.serverPath) was not found on PATH. ${INSTALL_HINT}` };
    }
    return { command: exe, args: ['serve'], env: {}, source: 'spark.serverPath' };
  }

  const bundle = bundledManifest(cfg.extensionPath);
  const strategy = cfg.importStrategy === 'fromEnvironment' ? 'fromEnvironment' : 'useBundled';
  const candidates = [];
  const configured = (cfg.pythonPath || '').trim();
  if (configured) {
    candidates.push({ path: configured, source: 'spark.pythonPath', explicit: true });
  } else {
    if (cfg.pythonFromExtension && cfg.pythonFromExtension.path) {
      candidates.push(Object.assign({ source: 'the Python extension' }, cfg.pythonFromExtension));
    }
    for (const name of ['python3', 'python']) candidates.push({ path: name, source: 'PATH' });
  }

  const tried = [];
  for (const candidate of candidates) {
    const exe = findExecutable(candidate.path, env);
    if (!exe) {
      tried.push(`${candidate.path} (${candidate.source}): not found`);
      if (candidate.explicit) {
        return { error: `spark-ls: the Python interpreter \`${candidate.path}\` (setting spark.pythonPath) was not found.` };
      }
      continue;
    }
    const version = candidate.version || (await pythonVersion(exe, env));
    const shown = version ? version.join('.') : 'unknown version';
    if (!versionOk(version)) {
      tried.push(`${exe} (${candidate.source}): Python ${shown}`);
      if (candidate.explicit) {
        return { error: `spark-ls needs Python 3.11+; \`${exe}\` (setting spark.pythonPath) is Python ${shown}.` };
      }
      continue;
    }
    const hasBundle = bundle.pythons.includes(`${version[0]}.${version[1]}`);
    if (hasBundle) {
      return {
        command: exe,
        args: [bundle.script, 'serve'],
        env: { SPARK_LS_IMPORT_STRATEGY: strategy },
        source: `bundled spark-ls, Python ${shown} from ${candidate.source}`,
      };
    }
    // No bundled libraries for this Python: its own spark-ls, if it has one.
    const probe = await execFileAsync(exe, ['-c', 'import spark_ls'], { env });
    if (!probe.error) {
      return { command: exe, args: ['-m', 'spark_ls', 'serve'], env: {}, source: `spark-ls installed for Python ${shown} (${candidate.source})` };
    }
    tried.push(`${exe} (${candidate.source}): Python ${shown}, no bundled libraries for it and no spark-ls installed`);
    if (candidate.explicit) {
      return {
        error:
          `spark-ls is not installed for \`${configured}\` (Python ${shown}; the bundled server covers Python ` +
          `${bundle.pythons.join(', ') || 'none'}). Install it into that interpreter (from a clone of spark-ls: ` +
          `\`${configured} -m pip install '.[local]'\`), or clear spark.pythonPath.`,
      };
    }
  }
  const own = findExecutable('spark-ls', env);
  if (own) return { command: own, args: ['serve'], env: {}, source: 'spark-ls on PATH' };
  return { error: `spark-ls could not start: no usable Python 3.11+ (${tried.join('; ') || 'none found'}). ${INSTALL_HINT}` };
}

/** Turn a spawn failure (ENOENT, EACCES) into the same clear message. */
function describeStartError(err, command) {
  const code = err && (err.code || (err.error && err.error.code));
  const text = String((err && err.message) || err || '');
  if (code === 'ENOENT' || /ENOENT/.test(text)) {
    return `spark-ls is not installed: \`${command}\` could not be started (ENOENT). ${INSTALL_HINT}`;
  }
  if (code === 'EACCES' || /EACCES/.test(text)) {
    return `spark-ls: \`${command}\` is not executable (EACCES). Check the spark.serverPath setting.`;
  }
  return `spark-ls failed to start (${redact(text)}); its error output is in "Spark: Show Log".`;
}

/**
 * initializationOptions from the `spark.*` settings. Only settings the user actually set are sent,
 * so that the environment and `[tool.spark-ls]` in pyproject.toml keep working underneath.
 * @param {(key: string) => ({value: any, explicit: boolean})} read
 */
function initializationOptions(read) {
  const options = {};
  for (const [setting, field] of Object.entries(INIT_OPTION_KEYS)) {
    const { value, explicit } = read(setting);
    if (!explicit || value === undefined || value === null) continue;
    if (typeof value === 'string' && value.trim() === '') continue;
    if (Array.isArray(value) && value.length === 0) continue;
    options[field] = typeof value === 'string' ? value.trim() : value;
  }
  return options;
}

/** The child process environment: the editor's, plus the key from SecretStorage when there is one. */
function serverEnv(baseEnv, apiKey) {
  const env = Object.assign({}, baseEnv);
  if (apiKey) env.OPENAI_API_KEY = apiKey;
  return env;
}

/** Remove anything that looks like an API key from a message before it is shown or logged. */
function redact(text) {
  return String(text)
    .replace(/\bsk-[A-Za-z0-9_\-]{8,}/g, 'sk-***')
    .replace(/(OPENAI_API_KEY=)\S+/g, '$1***')
    .replace(/(Bearer\s+)\S+/gi, '$1***');
}

/** The last prompt (spark/lastPrompt) as a Markdown document for "Spark: Show Prompt". */
function promptDocument(prompt) {
  if (!prompt) return null;
  const fence = (text) => '````text\n' + redact(text || '') + '\n````\n';
  return [
    `# spark-ls: last prompt (${prompt.action}, model ${prompt.model})`,
    '',
    'Exactly what was sent to the model for the last action, with anything key-shaped redacted.',
    '',
    '## Input',
    '',
    fence(prompt.input),
    ...(prompt.context ? ['## Context', '', fence(prompt.context)] : []),
    '## Instructions',
    '',
    fence(prompt.instructions),
  ].join('\n');
}

module.exports = {
  INSTALL_HINT,
  INIT_OPTION_KEYS,
  findExecutable,
  pythonVersion,
  bundledManifest,
  resolveServer,
  describeStartError,
  initializationOptions,
  serverEnv,
  redact,
  promptDocument,
};
