//! Zed extension that starts `spark-ls serve` and forwards its settings.
//!
//! Settings (Zed `settings.json`):
//!   "lsp": { "spark-ls": {
//!       "binary": { "path": "/path/to/spark-ls", "arguments": ["serve"] },
//!       "initialization_options": { "model": "gpt-5.3-codex-spark" } } }
use zed_extension_api::{self as zed, serde_json, settings::LspSettings, LanguageServerId, Result};

const SERVER: &str = "spark-ls";

struct SparkLsExtension;

impl zed::Extension for SparkLsExtension {
    fn new() -> Self {
        SparkLsExtension
    }

    fn language_server_command(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let binary = LspSettings::for_worktree(SERVER, worktree)
            .ok()
            .and_then(|settings| settings.binary);
        let path = binary
            .as_ref()
            .and_then(|b| b.path.clone())
            .or_else(|| worktree.which(SERVER))
            .ok_or_else(|| {
                "spark-ls is not on PATH: from a clone of spark-ls run `pipx install '.[local]'` (or `uv tool install '.[local]'`), or set lsp.spark-ls.binary.path".to_string()
            })?;
        let args = binary
            .as_ref()
            .and_then(|b| b.arguments.clone())
            .unwrap_or_else(|| vec!["serve".to_string()]);
        Ok(zed::Command {
            command: path,
            args,
            // The login shell's environment, so OPENAI_API_KEY / OPENAI_BASE_URL reach the server.
            env: worktree.shell_env(),
        })
    }

    fn language_server_initialization_options(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<serde_json::Value>> {
        Ok(LspSettings::for_worktree(SERVER, worktree)
            .ok()
            .and_then(|settings| settings.initialization_options))
    }
}

zed::register_extension!(SparkLsExtension);
