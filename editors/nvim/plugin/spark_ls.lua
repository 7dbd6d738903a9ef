-- spark-ls user commands. Loading this file starts nothing: call
-- require("spark_ls").setup({...}) or vim.lsp.enable("spark_ls") (0.11+) for that.
if vim.g.loaded_spark_ls then
  return
end
vim.g.loaded_spark_ls = true

local function spark()
  return require("spark_ls")
end

vim.api.nvim_create_user_command("SparkEdit", function(cmd)
  spark().command_edit(cmd)
end, {
  nargs = "?",
  range = true,
  desc = "spark-ls: rewrite the selection (or the function under the cursor) following an instruction",
})

vim.api.nvim_create_user_command("SparkActions", function()
  spark().code_action()
end, { range = true, desc = "spark-ls: code actions from spark-ls only" })

vim.api.nvim_create_user_command("SparkStart", function()
  spark().start(0)
end, { desc = "spark-ls: start (or attach) the server for this buffer" })

vim.api.nvim_create_user_command("SparkStop", function()
  local client = spark().get_client(0)
  if client then
    if vim.fn.has("nvim-0.11") == 1 then
      client:stop()
    else
      client.stop()
    end
  end
end, { desc = "spark-ls: stop the server attached to this buffer" })

vim.api.nvim_create_user_command("SparkNextEdit", function()
  require("spark_ls.inline").request_next_edit(0)
end, { desc = "spark-ls: predict the next edit near the cursor (Tab accepts, Esc dismisses)" })
