-- AWS KMS Encrypt (JSON 1.1 protocol) of a 32-byte plaintext against moto. moto picks the
-- service from the SigV4 Authorization header (credential scope .../kms/...) but does not
-- verify the signature, so a syntactically valid header with fake credentials is sent.
local c = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
c.post("/", {
  ["Authorization"] = c.env("BENCH_SIGV4"),
  ["X-Amz-Date"] = c.env("BENCH_AMZ_DATE"),
  ["X-Amz-Target"] = "TrentService.Encrypt",
  ["Content-Type"] = "application/x-amz-json-1.1",
}, '{"KeyId": "' .. c.env("BENCH_KEY_ID") .. '", "Plaintext": "' .. c.env("BENCH_PLAINTEXT_B64") .. '"}')
