-- :checkhealth spark_ls
local M = {}

function M.check()
  local health = vim.health
  local spark = require("spark_ls")
  health.start("spark-ls")

  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. tostring(vim.version()))
  else
    health.error("Neovim 0.10 or newer is required")
  end

  local cmd = spark.options.cmd or {}
  local exe = cmd[1]
  if exe and vim.fn.executable(exe) == 1 then
    health.ok("server command: " .. table.concat(cmd, " ") .. " (" .. vim.fn.exepath(exe) .. ")")
  else
    health.error(
      "server command not found: " .. tostring(exe),
      { "from a clone of spark-ls: pipx install '.[local]' (or uv tool install '.[local]')", 'or require("spark_ls").setup({ cmd = { "/abs/path/to/spark-ls", "serve" } })' }
    )
  end

  local init = spark.init_options()
  if vim.env.OPENAI_API_KEY and vim.env.OPENAI_API_KEY ~= "" then
    health.ok("OPENAI_API_KEY is set")
  elseif init.base_url or vim.env.OPENAI_BASE_URL then
    health.info("OPENAI_API_KEY is not set; using base_url " .. tostring(init.base_url or vim.env.OPENAI_BASE_URL))
  else
    health.warn("OPENAI_API_KEY is not set: spark-ls will use its embedded local model, if installed")
  end
  health.info("model: " .. tostring(init.model or "(server default)"))

  local clients = vim.lsp.get_clients and vim.lsp.get_clients({ name = spark.name }) or {}
  if #clients > 0 then
    for _, client in ipairs(clients) do
      health.ok(("client %d running, root %s"):format(client.id, tostring(client.root_dir or client.config.root_dir)))
    end
  else
    health.info("no spark-ls client running (open a file of a configured filetype)")
  end
end

return M
