-- Neovim 0.11+: `vim.lsp.enable("spark_ls")` picks this file up from the runtimepath.
-- Override any field with vim.lsp.config("spark_ls", { init_options = { model = "..." } }).
-- (On 0.11+, require("spark_ls").setup({...}) does exactly this: vim.lsp.config + vim.lsp.enable.)
local spark = require("spark_ls")
local config = spark.client_config(spark.options)
return {
  cmd = config.cmd,
  cmd_env = config.cmd_env,
  filetypes = config.filetypes,
  root_markers = config.root_markers,
  init_options = config.init_options,
  handlers = config.handlers, -- spark/status, for require("spark_ls").status()
  on_attach = config.on_attach,
  on_exit = config.on_exit,
}
