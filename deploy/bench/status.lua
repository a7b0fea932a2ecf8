-- wrk script: GET /v1/status/<serial> for serials drawn at random from serials.txt
-- (written by `credmint bench seed --serials-out`), so the load spreads over the ledger.
local serials = {}
for line in io.lines(os.getenv("SERIALS") or "serials.txt") do
  serials[#serials + 1] = line
end
request = function()
  return wrk.format("GET", "/v1/status/" .. serials[math.random(#serials)])
end
