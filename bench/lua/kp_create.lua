-- Key Protect create key: POST /api/v2/keys with one root-key resource (reference §2.1), the
-- headers the keyprotect Python client sends, bearer token from /identity/token. Every request
-- names a new key "k-<run tag>-<counter>" (one counter per wrk thread; the driver runs one
-- thread and a fresh BENCH_RUN_TAG per wrk run), so no two created keys share a name.
local c = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local headers = {
  ["Authorization"] = "Bearer " .. c.env("BENCH_TOKEN"),
  ["Bluemix-Instance"] = c.env("BENCH_INSTANCE"),
  ["Content-Type"] = "application/vnd.ibm.kms.key+json",
  ["Accept"] = "application/json",
}
local tag = c.env("BENCH_RUN_TAG")
local head = '{"metadata":{"collectionType":"application/vnd.ibm.kms.key+json","collectionTotal":1},'
  .. '"resources":[{"type":"application/vnd.ibm.kms.key+json","name":"k-' .. tag .. '-'
local tail = '","extractable":false}]}'
local counter = 0
-- 201s, per thread (each wrk thread has its own Lua state; done() reads them through setup's
-- thread objects), so the driver can compare them with the keys the store holds afterwards.
created = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/api/v2/keys", headers, head .. counter .. tail)
end

function response(status, resp_headers, body)
  if status == 201 then
    created = created + 1
  end
end

local done_stats = done
function done(summary, latency, requests)
  done_stats(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("created")
  end
  io.write(string.format('BENCH_CREATED {"created":%d}\n', total))
end
