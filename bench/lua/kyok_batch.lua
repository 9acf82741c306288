-- kyok batch call: POST /api/v2/kyok/keys/<id>/actions/batch-<action> with the body read once
-- from BENCH_BODY_FILE (bench/batch.py writes it: 10,000 items), bearer token from /identity/token.
local c = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local f = assert(io.open(c.env("BENCH_BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
c.post("/api/v2/kyok/keys/" .. c.env("BENCH_KEY_ID") .. "/actions/batch-" .. c.env("BENCH_ACTION"), {
  ["Authorization"] = "Bearer " .. c.env("BENCH_TOKEN"),
  ["Bluemix-Instance"] = c.env("BENCH_INSTANCE"),
  ["Content-Type"] = "application/json",
  ["Accept"] = "application/json",
}, body)
