-- spark-ls for Neovim (0.10+; tested on 0.11 and 0.12).
--
--   require("spark_ls").setup({ model = "gpt-5.3-codex-spark" })
--
-- One start path per Neovim version: on 0.11+ setup() registers the configuration with
-- vim.lsp.config("spark_ls", ...) and calls vim.lsp.enable("spark_ls") (the same as using
-- lsp/spark_ls.lua yourself); on 0.10 it starts `spark-ls serve` with vim.lsp.start on FileType.
-- Statusline: require("spark_ls").status() (the server's spark/status: ready, the action being
-- run, or error).
-- AI fixes and refactors show up in the ordinary code-action menu (vim.lsp.buf.code_action,
-- `gra` on 0.11+); :SparkEdit asks for an instruction and rewrites the selection or the
-- function under the cursor (workspace/executeCommand "spark.editWithInstruction").

local M = {}

M.name = "spark_ls"
M.edit_command = "spark.editWithInstruction"

-- Settings forwarded to the server as initializationOptions (spark_ls/config.py field names).
M.server_settings = {
  "model",
  "fallback_models",
  "pin",
  "edit_format",
  "transport",
  "base_url",
  "tls_verify",
  "pool_size",
  "request_timeout",
  "context_budget",
  "prefetch",
  "diagnostics",
  "record",
  "replay",
  "local_model_path",
  "actions",
}

M.defaults = {
  cmd = { "spark-ls", "serve" },
  -- Extra environment for the server process (e.g. { OPENAI_BASE_URL = "..." }). The API key is
  -- best left in the environment Neovim was started from (OPENAI_API_KEY).
  cmd_env = nil,
  filetypes = {
    "python",
    "javascript",
    "javascriptreact",
    "typescript",
    "typescriptreact",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
  },
  root_markers = {
    "spark-ls.toml",
    "pyproject.toml",
    "setup.py",
    "package.json",
    "go.mod",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "compile_commands.json",
    "Makefile",
    ".git",
  },
  -- Server settings (nil = server default / environment / pyproject [tool.spark-ls]).
  model = nil,
  fallback_models = nil,
  pin = nil,
  base_url = nil,
  context_budget = nil,
  prefetch = nil,
  -- Any other initializationOptions, merged last.
  init_options = {},
  -- Start automatically on FileType. false: only :SparkStart.
  autostart = true,
  -- Buffer-local keymaps set when spark-ls attaches; false/nil leaves the key unmapped.
  keymaps = {
    edit = nil, -- e.g. "<leader>se" (normal + visual): :SparkEdit
    actions = nil, -- e.g. "<leader>sa" (normal + visual): code actions from spark-ls only
  },
  on_attach = nil, -- function(client, bufnr)
  -- Inline completions (ghost text, 0.12+) and next-edit suggestions; false turns both off.
  -- { enable = true, next_edit = "auto" | "manual" | false, accept_key = "<Tab>", dismiss_key = "<Esc>" }
  inline = nil,
  on_exit = nil, -- function(code, signal, client_id)
}

M.options = vim.deepcopy(M.defaults)

local has_011 = vim.fn.has("nvim-0.11") == 1

-- client:request on 0.11+, client.request on 0.10.
local function client_request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function get_clients(filter)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients(filter)
  end
  return vim.lsp.get_active_clients(filter) -- luacheck: ignore (0.9)
end

--- initializationOptions built from options: known settings first, then opts.init_options.
function M.init_options(opts)
  opts = opts or M.options
  local init = {}
  for _, key in ipairs(M.server_settings) do
    if opts[key] ~= nil then
      init[key] = opts[key]
    end
  end
  return vim.tbl_deep_extend("force", init, opts.init_options or {})
end

local function find_root(bufnr, markers)
  local path = vim.api.nvim_buf_get_name(bufnr)
  if path == "" then
    return vim.fn.getcwd()
  end
  if vim.fs.root then
    return vim.fs.root(bufnr, markers) or vim.fs.dirname(path)
  end
  local found = vim.fs.find(markers, { path = vim.fs.dirname(path), upward = true })[1]
  return found and vim.fs.dirname(found) or vim.fs.dirname(path)
end

local function set_keymaps(bufnr, keymaps)
  keymaps = keymaps or {}
  if keymaps.edit then
    vim.keymap.set("n", keymaps.edit, "<cmd>SparkEdit<cr>", { buffer = bufnr, desc = "spark-ls: edit with instruction" })
    vim.keymap.set("x", keymaps.edit, ":SparkEdit<cr>", { buffer = bufnr, desc = "spark-ls: edit selection with instruction" })
  end
  if keymaps.actions then
    vim.keymap.set({ "n", "x" }, keymaps.actions, M.code_action, { buffer = bufnr, desc = "spark-ls: code actions" })
  end
end

-- The last spark/status per client id: { state = "ready"|"working"|"error", action = ..., model = ..., latencyMs = ... }.
M._status = {}

local function on_status(err, result, ctx)
  if err or type(result) ~= "table" or not ctx then
    return
  end
  M._status[ctx.client_id] = result
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "SparkStatus", modeline = false, data = result })
  pcall(vim.cmd.redrawstatus)
end

M.handlers = { ["spark/status"] = on_status }

--- A statusline component: "" when spark-ls is not attached to the buffer, else e.g.
--- "spark-ls gpt-5-mini · 420 ms", "spark-ls: Fix bug in add…" while an action runs, "spark-ls: error".
--- Lualine: sections = { lualine_x = { function() return require("spark_ls").status() end } }
function M.status(bufnr)
  local client = M.get_client(bufnr)
  if not client then
    return ""
  end
  local s = M._status[client.id]
  if not s then
    return "spark-ls: starting"
  end
  if s.state == "working" then
    return "spark-ls: " .. (type(s.action) == "string" and s.action or "working") .. "…"
  end
  if s.state == "error" then
    return "spark-ls: error"
  end
  local text = "spark-ls"
  if type(s.model) == "string" and s.model ~= "" then
    text = text .. " " .. s.model
  end
  if type(s.latencyMs) == "number" then
    text = text .. string.format(" · %d ms", math.floor(s.latencyMs + 0.5))
  end
  return text
end

--- The client configuration (vim.lsp.ClientConfig without root_dir) for the current options.
function M.client_config(opts)
  opts = opts or M.options
  return {
    name = M.name,
    cmd = opts.cmd,
    cmd_env = opts.cmd_env,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = M.init_options(opts),
    handlers = M.handlers,
    on_exit = function(code, signal, client_id)
      M._status[client_id] = nil
      if opts.on_exit then
        opts.on_exit(code, signal, client_id)
      end
    end,
    on_attach = function(client, bufnr)
      set_keymaps(bufnr, opts.keymaps)
      if opts.inline ~= false then
        require("spark_ls.inline").attach(client, bufnr, opts.inline) -- ghost text + next edit
      end
      if opts.on_attach then
        opts.on_attach(client, bufnr)
      end
    end,
  }
end

--- Start (or reuse) spark-ls for a buffer (:SparkStart, or setup() on 0.10). Returns the client id.
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local config = M.client_config()
  if has_011 and vim.lsp.config and vim.lsp.config[M.name] then
    -- The configuration Neovim resolved (lsp/spark_ls.lua + vim.lsp.config overrides).
    config = vim.deepcopy(vim.lsp.config[M.name])
    config.name = M.name
  end
  config.root_dir = find_root(bufnr, config.root_markers or M.options.root_markers)
  config.root_markers = nil
  config.filetypes = nil
  return vim.lsp.start(config, { bufnr = bufnr })
end

local augroup = nil

function M.setup(opts)
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  -- Lists replace rather than merge.
  for _, key in ipairs({ "cmd", "filetypes", "root_markers", "fallback_models" }) do
    if opts and opts[key] ~= nil then
      M.options[key] = opts[key]
    end
  end
  if has_011 and vim.lsp.config and vim.lsp.enable then
    -- 0.11+: Neovim's own mechanism, exactly as `vim.lsp.enable("spark_ls")` with lsp/spark_ls.lua
    -- (it also attaches to buffers that were opened before setup() ran).
    vim.lsp.config(M.name, M.client_config())
    if M.options.autostart then
      vim.lsp.enable(M.name)
    end
    return M
  end
  -- 0.10: start on FileType.
  augroup = vim.api.nvim_create_augroup("spark_ls", { clear = true })
  if M.options.autostart then
    vim.api.nvim_create_autocmd("FileType", {
      group = augroup,
      pattern = M.options.filetypes,
      callback = function(args)
        M.start(args.buf)
      end,
    })
    -- Buffers that were opened before setup() ran.
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and vim.tbl_contains(M.options.filetypes, vim.bo[buf].filetype) then
        M.start(buf)
      end
    end
  end
  return M
end

--- The spark-ls client attached to a buffer (nil when none).
function M.get_client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local clients = get_clients({ bufnr = bufnr, name = M.name })
  if clients[1] then
    return clients[1]
  end
  -- Started some other way (nvim-lspconfig under another name, ...): find it by its command.
  for _, client in ipairs(get_clients({ bufnr = bufnr })) do
    local caps = client.server_capabilities or {}
    local cmds = caps.executeCommandProvider and caps.executeCommandProvider.commands or {}
    if vim.tbl_contains(cmds, M.edit_command) then
      return client
    end
  end
  return nil
end

local function line_text(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

local function lsp_char(bufnr, row, byte_col, encoding)
  if byte_col <= 0 then
    return 0
  end
  return vim.lsp.util.character_offset(bufnr, row, byte_col, encoding)
end

--- LSP range for a :command range.
--- cmd: { range = 0|1|2, line1, line2 } as passed to nvim_create_user_command callbacks.
--- No range: an empty range at the cursor (spark-ls widens it to the enclosing function).
--- A characterwise visual selection keeps its columns; anything else covers whole lines.
function M.command_range(bufnr, cmd, encoding)
  if not cmd or (cmd.range or 0) == 0 then
    local cursor = vim.api.nvim_win_get_cursor(0)
    local row = cursor[1] - 1
    local pos = { line = row, character = lsp_char(bufnr, row, cursor[2], encoding) }
    return { start = pos, ["end"] = vim.deepcopy(pos) }
  end
  local first, last = cmd.line1 - 1, cmd.line2 - 1
  local vs = vim.api.nvim_buf_get_mark(bufnr, "<")
  local ve = vim.api.nvim_buf_get_mark(bufnr, ">")
  if vim.fn.visualmode() == "v" and vs[1] - 1 == first and ve[1] - 1 == last then
    local end_line = line_text(bufnr, last)
    local end_byte = math.min(ve[2], #end_line)
    if end_byte < #end_line and vim.o.selection ~= "exclusive" then
      -- include the last selected character (LSP end is exclusive)
      local char_len = vim.str_utf_end and (vim.str_utf_end(end_line, end_byte + 1) + 1) or 1
      end_byte = end_byte + char_len
    end
    return {
      start = { line = first, character = lsp_char(bufnr, first, vs[2], encoding) },
      ["end"] = { line = last, character = lsp_char(bufnr, last, end_byte, encoding) },
    }
  end
  local last_text = line_text(bufnr, last)
  return {
    start = { line = first, character = 0 },
    ["end"] = { line = last, character = lsp_char(bufnr, last, #last_text, encoding) },
  }
end

local function notify(msg, level)
  vim.notify("spark-ls: " .. msg, level or vim.log.levels.INFO)
end

--- Ask spark-ls to rewrite `range` (LSP range; default: the cursor) following `instruction`.
--- The server answers with workspace/applyEdit, which Neovim applies.
--- opts: { bufnr, range, instruction, cmd (user-command args), on_done = function(err, result) }
function M.edit(opts)
  opts = opts or {}
  local bufnr = (opts.bufnr == nil or opts.bufnr == 0) and vim.api.nvim_get_current_buf() or opts.bufnr
  local client = M.get_client(bufnr)
  if not client then
    notify("not attached to this buffer (is `spark-ls` on $PATH? see :checkhealth vim.lsp)", vim.log.levels.ERROR)
    return
  end
  local encoding = client.offset_encoding or "utf-16"
  local range = opts.range or M.command_range(bufnr, opts.cmd, encoding)

  local function run(instruction)
    if instruction == nil or vim.trim(instruction) == "" then
      return
    end
    local params = {
      command = M.edit_command,
      arguments = { vim.uri_from_bufnr(bufnr), range, instruction },
    }
    notify("editing…")
    client_request(client, "workspace/executeCommand", params, function(err, result)
      if err then
        notify(err.message or vim.inspect(err), vim.log.levels.ERROR)
      elseif type(result) == "table" and result.applied == false then
        notify("no edit applied" .. (result.reason and result.reason ~= vim.NIL and (": " .. tostring(result.reason)) or ""), vim.log.levels.WARN)
      else
        notify("done")
      end
      if opts.on_done then
        opts.on_done(err, result)
      end
    end, bufnr)
  end

  if opts.instruction then
    run(opts.instruction)
  else
    vim.ui.input({ prompt = "Spark edit: " }, run)
  end
end

--- The code-action menu restricted to spark-ls (same flow as vim.lsp.buf.code_action:
--- codeAction/resolve, then the workspace edit is applied).
function M.code_action(opts)
  opts = vim.deepcopy(opts or {})
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.get_client(bufnr)
  if not client then
    notify("not attached to this buffer", vim.log.levels.ERROR)
    return
  end
  local user_filter = opts.filter
  local spark_titles = {}
  -- vim.lsp.buf.code_action's filter sees only the action, so ask spark-ls first and
  -- keep its titles.
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding or "utf-16")
  local mode = vim.api.nvim_get_mode().mode
  if mode == "v" or mode == "V" or mode == "\22" then
    local s = vim.fn.getpos("v")
    local e = vim.fn.getpos(".")
    if s[2] > e[2] or (s[2] == e[2] and s[3] > e[3]) then
      s, e = e, s
    end
    params = vim.lsp.util.make_given_range_params({ s[2], s[3] - 1 }, { e[2], e[3] - 1 }, bufnr, client.offset_encoding or "utf-16")
  end
  local lnum = vim.api.nvim_win_get_cursor(0)[1] - 1
  local diags = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = lnum })) do
    if d.user_data and d.user_data.lsp then
      table.insert(diags, d.user_data.lsp)
    end
  end
  params.context = { diagnostics = diags, triggerKind = 1 }
  client_request(client, "textDocument/codeAction", params, function(err, result)
    if err then
      notify(err.message or vim.inspect(err), vim.log.levels.ERROR)
      return
    end
    for _, a in ipairs(result or {}) do
      spark_titles[a.title] = true
    end
    opts.filter = function(a)
      return spark_titles[a.title] == true and (user_filter == nil or user_filter(a))
    end
    vim.lsp.buf.code_action(opts)
  end, bufnr)
end

--- :SparkEdit [instruction]   (range-aware; without an argument asks with vim.ui.input)
function M.command_edit(cmd)
  local instruction = cmd.args ~= "" and cmd.args or nil
  M.edit({ cmd = cmd, instruction = instruction })
end

return M
