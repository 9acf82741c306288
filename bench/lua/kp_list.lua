-- Key Protect list/count keys: GET (or HEAD) $BENCH_PATH, e.g. /api/v2/keys?limit=200, with the
-- headers the keyprotect Python client sends (reference §9: Accept application/json, bearer
-- token from /identity/token, Bluemix-Instance) and X-Kms-Key-Ring when $BENCH_KEY_RING is set.
local c = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.path = c.env("BENCH_PATH")
wrk.headers["Authorization"] = "Bearer " .. c.env("BENCH_TOKEN")
wrk.headers["Bluemix-Instance"] = c.env("BENCH_INSTANCE")
wrk.headers["Accept"] = "application/json"
local ring = os.getenv("BENCH_KEY_RING")
if ring ~= nil and ring ~= "" then
  wrk.headers["X-Kms-Key-Ring"] = ring
end
