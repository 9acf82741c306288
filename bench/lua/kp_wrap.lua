-- Key Protect wrap: POST /api/v2/keys/<id>/actions/wrap with a 32-byte DEK, the headers the
-- keyprotect Python client sends (reference §9 step 2), bearer token from /identity/token.
local c = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
c.post("/api/v2/keys/" .. c.env("BENCH_KEY_ID") .. "/actions/wrap", {
  ["Authorization"] = "Bearer " .. c.env("BENCH_TOKEN"),
  ["Bluemix-Instance"] = c.env("BENCH_INSTANCE"),
  ["Content-Type"] = "application/vnd.ibm.kms.key_action_wrap+json",
  ["Accept"] = "application/json",
}, '{"plaintext": "' .. c.env("BENCH_PLAINTEXT_B64") .. '"}')
