-- Headless end-to-end driver for spark-ls in a real Neovim (used by tests/test_nvim_e2e.py).
--
--   SPARK_E2E_CONFIG=plan.json nvim --headless --clean \
--     --cmd "set rtp^=editors/nvim" -c "luafile editors/nvim/test/e2e.lua"
--
-- plan.json:
--   { "result": "/tmp/out.json",               -- written before Neovim exits
--     "setup": { cmd = [...], model = ..., base_url = ..., init_options = {...} },
--     "timeout_ms": 60000,
--     "steps": [
--       { "kind": "code_action", "file": "/abs/x.py", "cursor": [row1, col0], "title": "Fix bug in f" },
--       -- or "title_prefix": "Fix: " (first match), "wait_diagnostic": true (wait for diagnostics first),
--       -- "via": "SparkActions" (the plugin's spark-ls-only menu instead of vim.lsp.buf.code_action)
--       { "kind": "spark_edit",  "file": "/abs/x.py", "cursor": [row1, col0], "instruction": "...",
--         "visual": [line1, line2] }                 -- optional: a linewise selection
--       { "kind": "inline_completion", "file": ..., "cursor": [...], "type": "chars typed after `a`" }
--       { "kind": "next_edit", "file": ..., "cursor": [...], "accept": true|false }
--     ] }
--
-- Each step opens the file, waits for spark-ls to attach, does what a user does (the code-action
-- menu picked by title, or :SparkEdit answering vim.ui.input), waits for the buffer to change,
-- then :write. Everything observed goes into the result file; Neovim exits 0 when every step
-- succeeded, 1 otherwise.

local result = { steps = {}, ok = false }
local server_exits = {}
local plan

local function write_result()
  if not plan or not plan.result then
    return
  end
  local ok_msgs, msgs = pcall(vim.api.nvim_exec2, "messages", { output = true })
  result.messages = ok_msgs and msgs.output or ""
  result.lsp_log = (vim.lsp.log and vim.lsp.log.get_filename) and vim.lsp.log.get_filename() or vim.lsp.get_log_path()
  result.nvim_version = tostring(vim.version())
  result.server_exits = server_exits
  local fh = assert(io.open(plan.result, "w"))
  fh:write(vim.json.encode(result))
  fh:close()
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
end

-- Notifications (vim.lsp.buf.code_action reports a failed resolve with vim.notify at ERROR level).
result.notifications = {}
local errors_seen = 0
local real_notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(result.notifications, { msg = tostring(msg), level = level or vim.log.levels.INFO })
  if (level or 0) >= vim.log.levels.ERROR then
    errors_seen = errors_seen + 1
  end
  return real_notify(msg, level, opts)
end

-- Every spark/status the plugin saw (through its User SparkStatus event), and the statusline text.
result.statuses = {}
vim.api.nvim_create_autocmd("User", {
  pattern = "SparkStatus",
  callback = function(args)
    local d = args.data or {}
    table.insert(result.statuses, { state = d.state, action = d.action or vim.NIL, statusline = require("spark_ls").status() })
  end,
})

local function on_exit(code, signal, client_id)
  table.insert(server_exits, { code = code, signal = signal, client_id = client_id })
end

local function wait_attached(bufnr, timeout)
  local spark = require("spark_ls")
  local client
  local ok = vim.wait(timeout, function()
    client = spark.get_client(bufnr)
    return (client ~= nil and client.initialized == true) or #server_exits > 0
  end, 20)
  if #server_exits > 0 then
    error("spark-ls exited before attaching: " .. vim.inspect(server_exits) .. " (its stderr is in the LSP log)")
  end
  if not ok then
    error("spark-ls did not attach to buffer " .. bufnr .. " within " .. timeout .. " ms")
  end
  return client
end

local function request_sync(client, bufnr, method, params, timeout)
  local response
  local function handler(err, res)
    response = { err = err, result = res }
  end
  if vim.fn.has("nvim-0.11") == 1 then
    client:request(method, params, handler, bufnr)
  else
    client.request(method, params, handler, bufnr)
  end
  if not vim.wait(timeout, function()
    return response ~= nil
  end, 20) then
    error(method .. ": no response within " .. timeout .. " ms")
  end
  if response.err then
    error(method .. ": " .. vim.inspect(response.err))
  end
  return response.result
end

local function open(step)
  vim.cmd.edit(vim.fn.fnameescape(step.file))
  local bufnr = vim.api.nvim_get_current_buf()
  if step.cursor then
    vim.api.nvim_win_set_cursor(0, { step.cursor[1], step.cursor[2] })
  end
  return bufnr
end

local function wait_changed(bufnr, before, timeout, what)
  local errors_before = errors_seen
  local ok = vim.wait(timeout, function()
    return buffer_text(bufnr) ~= before or errors_seen > errors_before
  end, 20)
  if errors_seen > errors_before then
    error(what .. ": failed: " .. result.notifications[#result.notifications].msg)
  end
  if not ok then
    error(what .. ": the buffer did not change within " .. timeout .. " ms")
  end
  -- Let a multi-part edit finish before writing (applyEdit is one message, but be safe).
  vim.wait(50)
end

local steps = {}

-- The code-action menu, as a user uses it: list actions at the cursor (spark-ls's diagnostics
-- for this line are passed along by vim.lsp.buf.code_action), pick one by title, let Neovim
-- resolve it (codeAction/resolve) and apply the workspace edit.
function steps.code_action(step, out, timeout)
  local bufnr = open(step)
  local client = wait_attached(bufnr, timeout)
  out.client = client.name
  out.resolve_provider = vim.tbl_get(client.server_capabilities, "codeActionProvider", "resolveProvider") or false
  -- What the menu would show (recorded for diagnosis and checked by the test).
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {}, triggerKind = 1 }
  if step.wait_diagnostic then
    local ok = vim.wait(timeout, function()
      return #vim.diagnostic.get(bufnr) > 0
    end, 20)
    out.diagnostics = vim.tbl_map(function(d)
      return { lnum = d.lnum, message = d.message, source = d.source }
    end, vim.diagnostic.get(bufnr))
    if not ok then
      error("no diagnostics published within " .. timeout .. " ms")
    end
    -- Put the cursor on the first diagnostic, as ]d would.
    local first = vim.diagnostic.get(bufnr)[1]
    vim.api.nvim_win_set_cursor(0, { first.lnum + 1, first.col })
    params = vim.lsp.util.make_range_params(0, client.offset_encoding)
    params.context = { diagnostics = {}, triggerKind = 1 }
  end
  local lnum = vim.api.nvim_win_get_cursor(0)[1] - 1
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = lnum })) do
    if d.user_data and d.user_data.lsp then
      table.insert(params.context.diagnostics, d.user_data.lsp)
    end
  end
  local actions = request_sync(client, bufnr, "textDocument/codeAction", params, timeout) or {}
  out.titles = vim.tbl_map(function(a)
    return a.title
  end, actions)
  out.kinds = vim.tbl_map(function(a)
    return a.kind or vim.NIL
  end, actions)

  local before = buffer_text(bufnr)
  local title = step.title
  if not title and step.title_prefix then
    for _, t in ipairs(out.titles) do
      if vim.startswith(t, step.title_prefix) then
        title = t
        break
      end
    end
    if not title then
      error("no code action starting with " .. vim.inspect(step.title_prefix) .. "; got " .. vim.inspect(out.titles))
    end
  end
  out.picked = title
  local picked = {}
  -- vim.ui.select is what vim.lsp.buf.code_action shows; answer it like a user would.
  local real_select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    for _, item in ipairs(items) do
      table.insert(picked, item.action.title)
    end
    for _, item in ipairs(items) do
      if item.action.title == title then
        return on_choice(item)
      end
    end
    on_choice(nil)
  end
  local ok, err
  if step.via == "SparkActions" then
    ok, err = pcall(vim.cmd, "SparkActions")
  else
    ok, err = pcall(vim.lsp.buf.code_action, {})
  end
  if not ok then
    vim.ui.select = real_select
    error(err)
  end
  local changed_ok, changed_err = pcall(wait_changed, bufnr, before, timeout, "code action " .. title)
  vim.ui.select = real_select
  out.menu = picked
  if not vim.tbl_contains(picked, title) then
    error("the code-action menu had no " .. vim.inspect(title) .. "; it had " .. vim.inspect(picked))
  end
  if not changed_ok then
    error(changed_err)
  end
  vim.cmd.write()
  out.text = buffer_text(bufnr)
  -- The statusline component once the action is over (the server sends "ready" after an edit).
  vim.wait(timeout, function()
    return not vim.startswith(require("spark_ls").status(bufnr), "spark-ls: Fix")
  end, 20)
  out.statusline = require("spark_ls").status(bufnr)
end

-- :SparkEdit with vim.ui.input answered by the driver.
function steps.spark_edit(step, out, timeout)
  local bufnr = open(step)
  wait_attached(bufnr, timeout)
  out.command_exists = vim.fn.exists(":SparkEdit") == 2
  local before = buffer_text(bufnr)
  local prompts = {}
  local real_input = vim.ui.input
  vim.ui.input = function(opts, on_confirm)
    table.insert(prompts, opts.prompt or "")
    on_confirm(step.instruction)
  end
  local ok, err
  if step.visual then
    -- A linewise visual selection, then `:` (which inserts '<,'>) and SparkEdit.
    vim.api.nvim_win_set_cursor(0, { step.visual[1], 0 })
    vim.cmd("normal! V" .. (step.visual[2] - step.visual[1] > 0 and (step.visual[2] - step.visual[1]) .. "j" or "") .. "\27")
    ok, err = pcall(vim.cmd, "'<,'>SparkEdit")
  else
    ok, err = pcall(vim.cmd, "SparkEdit")
  end
  vim.ui.input = real_input
  out.prompts = prompts
  if not ok then
    error(err)
  end
  wait_changed(bufnr, before, timeout, ":SparkEdit")
  vim.cmd.write()
  out.text = buffer_text(bufnr)
end

-- Inline completion (ghost text, Neovim 0.12's vim.lsp.inline_completion): enter insert mode at
-- the cursor, type step.type, wait until the ghost text is drawn, record it, press <Tab> (the
-- plugin maps it to vim.lsp.inline_completion.get()), leave insert mode, :write.
local function typed(keys, flags)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), flags or "mx!", false)
end

local function extmarks(bufnr, ns_name)
  local ns = vim.api.nvim_get_namespaces()[ns_name]
  if not ns then
    return {}
  end
  return vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
end

local function extmark_text(marks)
  local parts = {}
  for _, m in ipairs(marks) do
    local d = m[4] or {}
    for _, chunk in ipairs(d.virt_text or {}) do
      table.insert(parts, chunk[1])
    end
    for _, line in ipairs(d.virt_lines or {}) do
      local l = {}
      for _, chunk in ipairs(line) do
        table.insert(l, chunk[1])
      end
      table.insert(parts, "\n" .. table.concat(l))
    end
  end
  return table.concat(parts)
end

function steps.inline_completion(step, out, timeout)
  local bufnr = open(step)
  local client = wait_attached(bufnr, timeout)
  out.provider = client.server_capabilities.inlineCompletionProvider ~= nil
  out.enabled = vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }) or false
  -- In insert mode the driver cannot wait: a timer watches for the ghost text, presses <Tab>
  -- (the plugin's mapping) and then <Esc>, which ends the blocking feedkeys below.
  local termcodes = function(k)
    return vim.api.nvim_replace_termcodes(k, true, false, true)
  end
  local deadline = vim.uv.now() + timeout
  local before
  local function tick()
    local marks = extmarks(bufnr, "nvim.lsp.inline_completion")
    if out.ghost == nil and #marks > 0 then
      out.ghost = extmark_text(marks)
      out.mode_before_accept = vim.api.nvim_get_mode().mode
      before = buffer_text(bufnr)
      vim.api.nvim_feedkeys(termcodes("<Tab>"), "m", false)
    elseif out.ghost ~= nil and buffer_text(bufnr) ~= before then
      vim.defer_fn(function()
        out.ghost_after_accept = extmark_text(extmarks(bufnr, "nvim.lsp.inline_completion"))
        vim.api.nvim_feedkeys(termcodes("<Esc>"), "n", false)
      end, 50)
      return
    elseif vim.uv.now() > deadline then
      out.timed_out = true
      vim.api.nvim_feedkeys(termcodes("<Esc>"), "n", false)
      return
    end
    vim.defer_fn(tick, 20)
  end
  vim.defer_fn(tick, 20)
  typed("a" .. (step.type or ""), "mx!")
  vim.wait(100)
  if out.timed_out or out.ghost == nil then
    error("no ghost text (or no accept) within " .. timeout .. " ms")
  end
  vim.cmd.write()
  out.text = buffer_text(bufnr)
end

-- Next edit (spark/nextEdit): :SparkNextEdit, wait for the virtual text, record it; step.accept:
-- <Tab> applies it (then :write); otherwise <Esc> dismisses it and the buffer must stay as it was.
function steps.next_edit(step, out, timeout)
  local bufnr = open(step)
  wait_attached(bufnr, timeout)
  local before = buffer_text(bufnr)
  vim.cmd("SparkNextEdit")
  local ok = vim.wait(timeout, function()
    return #extmarks(bufnr, "spark_ls.next_edit") > 0
  end, 20)
  out.virtual_text = extmark_text(extmarks(bufnr, "spark_ls.next_edit"))
  if not ok then
    error("no next edit shown within " .. timeout .. " ms")
  end
  if step.accept then
    typed("<Tab>", "mx")
    wait_changed(bufnr, before, timeout, "accepting the next edit")
  else
    typed("<Esc>", "mx")
    vim.wait(200)
    out.unchanged = buffer_text(bufnr) == before
  end
  out.marks_after = #extmarks(bufnr, "spark_ls.next_edit")
  vim.cmd.write()
  out.text = buffer_text(bufnr)
end

local function main()
  local path = assert(os.getenv("SPARK_E2E_CONFIG"), "SPARK_E2E_CONFIG is not set")
  local fh = assert(io.open(path, "r"))
  plan = vim.json.decode(fh:read("*a"))
  fh:close()
  if vim.lsp.log and vim.lsp.log.set_level then
    vim.lsp.log.set_level(plan.log_level or "debug")
  else
    vim.lsp.set_log_level(plan.log_level or "debug")
  end
  local timeout = plan.timeout_ms or 60000

  local setup = vim.deepcopy(plan.setup or {})
  if plan.mode == "enable" then
    -- The 0.11+ way: lsp/spark_ls.lua from the runtimepath, overridden with vim.lsp.config.
    vim.lsp.config("spark_ls", {
      cmd = setup.cmd,
      init_options = require("spark_ls").init_options(setup),
      on_exit = on_exit,
    })
    vim.lsp.enable("spark_ls")
  else
    setup.on_exit = on_exit
    require("spark_ls").setup(setup)
  end

  for i, step in ipairs(plan.steps) do
    local out = { kind = step.kind, file = step.file }
    result.steps[i] = out
    local ok, err = pcall(steps[step.kind], step, out, timeout)
    out.ok = ok
    if not ok then
      out.error = tostring(err)
      return false
    end
  end
  return true
end

local ok, res = xpcall(main, debug.traceback)
if not ok then
  result.error = tostring(res)
end
result.ok = ok and res == true
pcall(write_result)
-- Stop the server cleanly (shutdown + exit), then leave.
for _, client in ipairs(vim.lsp.get_clients()) do
  if vim.fn.has("nvim-0.11") == 1 then
    client:stop()
  else
    client.stop()
  end
end
vim.wait(3000, function()
  return #vim.lsp.get_clients() == 0
end, 20)
-- Record how the server process ended (exit code and signal), for the test to assert.
vim.wait(5000, function()
  return #server_exits > 0
end, 20)
pcall(write_result)
vim.cmd(result.ok and "qall!" or "cquit! 1")
