-- Key Protect unwrap of a ciphertext made by one wrap before the load (reference §9 step 3).
local c = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
c.post("/api/v2/keys/" .. c.env("BENCH_KEY_ID") .. "/actions/unwrap", {
  ["Authorization"] = "Bearer " .. c.env("BENCH_TOKEN"),
  ["Bluemix-Instance"] = c.env("BENCH_INSTANCE"),
  ["Content-Type"] = "application/vnd.ibm.kms.key_action_unwrap+json",
  ["Accept"] = "application/json",
}, '{"ciphertext": "' .. c.env("BENCH_CIPHERTEXT") .. '"}')
