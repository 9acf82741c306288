-- AWS KMS Decrypt of a CiphertextBlob made by one Encrypt before the load.
local c = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
c.post("/", {
  ["Authorization"] = c.env("BENCH_SIGV4"),
  ["X-Amz-Date"] = c.env("BENCH_AMZ_DATE"),
  ["X-Amz-Target"] = "TrentService.Decrypt",
  ["Content-Type"] = "application/x-amz-json-1.1",
}, '{"CiphertextBlob": "' .. c.env("BENCH_CIPHERTEXT") .. '"}')
