-- wrk script: GET /search for each query of a qid<TAB>query file, in turn.
-- The query file is named by the QUERIES environment variable; RANKER, when set, picks the ranker,
-- and EXPLORE=true asks for exploration.
local queries = {}
local ranker = os.getenv("RANKER")
local suffix = (ranker and #ranker > 0) and ("&ranker=" .. ranker) or ""
local explore = os.getenv("EXPLORE")
if explore and #explore > 0 then suffix = suffix .. "&explore=" .. explore end
local file = assert(io.open(os.getenv("QUERIES"), "r"))
for line in file:lines() do
  local text = line:match("^[^\t]*\t([^\t]*)")
  if text and #text > 0 then
    local encoded = text:gsub("([^%w%-%._~ ])", function(c) return string.format("%%%02X", string.byte(c)) end):gsub(" ", "+")
    table.insert(queries, "/search?k=10" .. suffix .. "&q=" .. encoded)
  end
end
file:close()
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", queries[(counter % #queries) + 1])
end
local errors = 0
response = function(status)
  if status ~= 200 then errors = errors + 1 end
end
done = function(summary, latency)
  io.write(string.format("requests %d, non-2xx %d, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
