'use strict';
// Pure helpers (no `vscode` import) so they can be reasoned about and reused outside the editor:
// which command starts spark-ls, with which environment and initializationOptions.

const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');

const INSTALL_HINT =
  'Install it with `python -m pip install spark-ls` (or `pipx install spark-ls`), ' +
  'or point the `spark.serverPath` / `spark.pythonPath` setting at an installation.';

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

/**
 * The command line that starts the server, or a user-facing error message.
 * @param {{serverPath?: string, pythonPath?: string}} cfg
 * @returns {{command: string, args: string[]} | {error: string}}
 */
function serverCommand(cfg, env = process.env) {
  const python = (cfg.pythonPath || '').trim();
  if (python) {
    const exe = findExecutable(python, env);
    if (!exe) {
      return { error: `spark-ls: the Python interpreter \`${python}\` (setting spark.pythonPath) was not found.` };
    }
    const probe = childProcess.spawnSync(exe, ['-c', 'import spark_ls'], { env, timeout: 20000, encoding: 'utf8' });
    if (probe.status !== 0) {
      return {
        error:
          `spark-ls is not installed for \`${python}\` (\`import spark_ls\` failed). ` +
          `Install it with \`${python} -m pip install spark-ls\`, or clear spark.pythonPath.`,
      };
    }
    return { command: exe, args: ['-m', 'spark_ls', 'serve'] };
  }
  const server = (cfg.serverPath || '').trim() || 'spark-ls';
  const exe = findExecutable(server, env);
  if (!exe) {
    return { error: `spark-ls is not installed: \`${server}\` was not found on PATH. ${INSTALL_HINT}` };
  }
  return { command: exe, args: ['serve'] };
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

module.exports = {
  INSTALL_HINT,
  INIT_OPTION_KEYS,
  findExecutable,
  serverCommand,
  describeStartError,
  initializationOptions,
  serverEnv,
  redact,
};
