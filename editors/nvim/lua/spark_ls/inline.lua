-- spark-ls inline completions (ghost text) and next-edit suggestions for Neovim.
--
-- Ghost text is Neovim's own (0.12+): vim.lsp.inline_completion.enable() for spark-ls's client;
-- <Tab> in insert mode accepts it (vim.lsp.inline_completion.get()).
-- Next edit: after you stop typing (InsertLeave, or :SparkNextEdit), spark-ls predicts the next
-- edit near the cursor ("spark/nextEdit"); it is shown as virtual text (the changed lines as
-- they would become, under the old ones, which are highlighted); <Tab> applies it, <Esc>
-- dismisses it. Without 0.12's inline_completion only next edits are available.
--
--   require("spark_ls").setup({ inline = { enable = true, next_edit = "auto" } })

local M = {}

M.ns = vim.api.nvim_create_namespace("spark_ls.next_edit")
M.method = "spark/nextEdit"

-- bufnr -> { edits, encoding, version, changedtick, client_id }
M.pending = {}

M.defaults = {
  enable = true, -- ghost text via vim.lsp.inline_completion (0.12+)
  next_edit = "auto", -- "auto": ask after InsertLeave; "manual": only :SparkNextEdit; false: never
  accept_key = "<Tab>",
  dismiss_key = "<Esc>",
}

M.options = vim.deepcopy(M.defaults)

function M.has_inline_completion()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

local function client_request(client, method, params, handler, bufnr)
  if vim.fn.has("nvim-0.11") == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

--- Clear a shown next edit.
function M.dismiss(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  M.pending[bufnr] = nil
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
end

--- The next edit shown in a buffer, if any (a table with edits, range, newText).
function M.current(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local p = M.pending[bufnr]
  if p and p.changedtick ~= vim.api.nvim_buf_get_changedtick(bufnr) then
    M.dismiss(bufnr) -- the text moved on: the prediction no longer applies
    return nil
  end
  return p
end

local function render(bufnr, result)
  vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  local first = result.range.start.line
  local last = result.range["end"].line
  local lines = vim.api.nvim_buf_get_lines(bufnr, first, last + 1, false)
  -- The changed lines as they would become: old text before the range + newText + old text after.
  local head = (lines[1] or ""):sub(1, result.range.start.character)
  local tail = (lines[#lines] or ""):sub(result.range["end"].character + 1)
  local new_lines = vim.split(head .. result.newText .. tail, "\n", { plain = true })
  for row = first, last do
    vim.api.nvim_buf_set_extmark(bufnr, M.ns, row, 0, { line_hl_group = "DiffDelete" })
  end
  local virt = {}
  for _, l in ipairs(new_lines) do
    table.insert(virt, { { l, "DiffAdd" } })
  end
  table.insert(virt, { { "  spark-ls: next edit — Tab accepts, Esc dismisses", "Comment" } })
  vim.api.nvim_buf_set_extmark(bufnr, M.ns, last, 0, { virt_lines = virt })
end

--- Ask spark-ls for the next edit at the cursor and show it. on_done(err, result) is optional.
function M.request_next_edit(bufnr, on_done)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = require("spark_ls").get_client(bufnr)
  if not client then
    if on_done then
      on_done("spark-ls is not attached", nil)
    end
    return
  end
  local encoding = client.offset_encoding or "utf-16"
  local params = vim.lsp.util.make_position_params(0, encoding)
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  client_request(client, M.method, params, function(err, result)
    if err or result == nil or result == vim.NIL or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick then
      M.dismiss(bufnr)
      if on_done then
        on_done(err, nil)
      end
      return
    end
    M.pending[bufnr] = {
      edits = result.edits,
      range = result.range,
      newText = result.newText,
      encoding = encoding,
      changedtick = tick,
      client_id = client.id,
    }
    render(bufnr, result)
    if on_done then
      on_done(nil, result)
    end
  end, bufnr)
end

--- Apply the shown next edit; false when there is none.
function M.accept_next_edit(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local p = M.current(bufnr)
  if not p then
    return false
  end
  M.dismiss(bufnr)
  vim.lsp.util.apply_text_edits(p.edits, bufnr, p.encoding)
  return true
end

--- Tab: a next edit first, then ghost text, else a literal Tab.
function M.tab()
  local bufnr = vim.api.nvim_get_current_buf()
  if M.current(bufnr) then
    vim.schedule(function()
      M.accept_next_edit(bufnr)
    end)
    return ""
  end
  if M.has_inline_completion() and vim.lsp.inline_completion.get({ bufnr = bufnr }) then
    return ""
  end
  return vim.api.nvim_replace_termcodes("<Tab>", true, false, true)
end

function M.escape()
  local bufnr = vim.api.nvim_get_current_buf()
  if M.pending[bufnr] then
    M.dismiss(bufnr)
  end
  return vim.api.nvim_replace_termcodes("<Esc>", true, false, true)
end

--- Called from spark-ls's on_attach.
function M.attach(client, bufnr, opts)
  opts = vim.tbl_deep_extend("force", M.options, opts or {})
  if opts.enable and M.has_inline_completion() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr }) -- (bufnr and client_id are exclusive)
  end
  if opts.accept_key then
    vim.keymap.set({ "i", "n" }, opts.accept_key, M.tab, { buffer = bufnr, expr = true, desc = "spark-ls: accept next edit / inline completion" })
  end
  if opts.dismiss_key then
    vim.keymap.set({ "i", "n" }, opts.dismiss_key, M.escape, { buffer = bufnr, expr = true, desc = "spark-ls: dismiss next edit" })
  end
  if opts.next_edit == "auto" then
    local group = vim.api.nvim_create_augroup("spark_ls_next_edit_" .. bufnr, { clear = true })
    vim.api.nvim_create_autocmd("InsertLeave", {
      group = group,
      buffer = bufnr,
      callback = function()
        M.request_next_edit(bufnr)
      end,
    })
  end
end

return M
