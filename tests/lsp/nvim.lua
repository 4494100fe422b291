-- Headless Neovim (0.7's built-in client) drives `pbc lsp`: it opens a fixture, receives the
-- server's diagnostics, asks for the code actions and applies the rename.
-- Run by cli/tests/lsp.rs: nvim --headless --clean -u NONE -c 'luafile tests/lsp/nvim.lua'
-- with PBC (the binary) and PBC_LSP_WS (a copy of tests/lsp/workspace) in the environment.
local pbc = os.getenv("PBC")
local ws = os.getenv("PBC_LSP_WS")

local function check()
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/loose.yaml"))
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({ name = "pbc", cmd = { pbc, "lsp" }, root_dir = ws })
  assert(id, "the client did not start")
  vim.lsp.buf_attach_client(buf, id)
  assert(vim.wait(60000, function() return #vim.diagnostic.get(buf) > 0 end, 20),
    "no diagnostics from pbc lsp")
  local d = vim.diagnostic.get(buf)[1]
  assert(d.code == "PB2001", "code: " .. vim.inspect(d))
  -- Neovim turned the server's UTF-16 position into a byte column: it must be where the
  -- misspelt key is, after the emoji on that line.
  local line = vim.api.nvim_buf_get_lines(buf, d.lnum, d.lnum + 1, true)[1]
  local byte = string.find(line, "aproval", 1, true) - 1
  assert(d.col == byte, ("column %d, expected %d"):format(d.col, byte))

  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    -- The finding's whole line (Neovim 0.7 keeps no protocol range of a diagnostic).
    range = { start = { line = d.lnum, character = 0 }, ["end"] = { line = d.lnum + 1, character = 0 } },
    context = { diagnostics = {} },
  }
  local res = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, 60000)
  assert(res and res[id] and res[id].result, "no code actions: " .. vim.inspect(res))
  local action
  for _, a in ipairs(res[id].result) do
    if a.title == "rename to `approval`" then action = a end
  end
  assert(action, "no rename action in " .. vim.inspect(res[id].result))
  vim.lsp.util.apply_workspace_edit(action.edit, "utf-16")
  local text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), "\n")
  assert(text:find("approval: auto", 1, true) and not text:find("aproval", 1, true),
    "the edit was not applied: " .. text)
  -- The change goes to the server, which clears the finding.
  assert(vim.wait(60000, function() return #vim.diagnostic.get(buf) == 0 end, 20),
    "the finding did not clear: " .. vim.inspect(vim.diagnostic.get(buf)))
  vim.lsp.stop_client(id)
end

local ok, err = pcall(check)
if not ok then
  io.stderr:write("FAIL: " .. tostring(err) .. "\n")
  vim.cmd("cquit 1")
end
io.stdout:write("ok\n")
vim.cmd("qall!")
