-- wrk script: GET a path drawn at random from $PATHS (one per line), e.g. OCSP GET
-- requests for many serials, so the responder's cache sees a realistic spread.
local paths = {}
for line in io.lines(os.getenv("PATHS") or "paths.txt") do
  paths[#paths + 1] = line
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
