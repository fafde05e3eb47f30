-- wrk script for mixed traffic: `wrk ... -s mixed.lua URL -- PATHS_FILE`. Each line of
-- PATHS_FILE is `<path>\t<Accept header>`; each wrk thread walks the list round-robin
-- from its own offset. Prints the same BENCH_JSON line as report.lua.
local paths = {}
local n = 0
local i = 0
local thread_no = 0

setup = function(thread)
  thread:set("thread_no", thread_no)
  thread_no = thread_no + 1
end

init = function(args)
  for line in io.lines(args[1]) do
    local p, accept = line:match("^([^\t]+)\t?(.*)$")
    if p then
      n = n + 1
      local headers = {}
      if accept and accept ~= "" then headers["Accept"] = accept end
      paths[n] = wrk.format("GET", p, headers)
    end
  end
  i = (thread_no or 0) * 7
end

request = function()
  i = i % n + 1
  return paths[i]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
