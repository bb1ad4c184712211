-- bodies.lua - wrk script: POST pre-signed webhooks from BENCH_BODIES, each
-- thread its own slice (so no two requests carry the same message id), and
-- with BENCH_DELAY_MS set, pause that long before each request (a paced,
-- below-capacity load for the latency figure). The nginx reference run gets
-- the same requests.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  sigs, bodies, n, i = {}, {}, 0, 0
  local line_no = 0
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if line_no % nthreads == id then
      local tab = line:find("\t", 1, true)
      n = n + 1
      sigs[n] = line:sub(1, tab - 1)
      bodies[n] = line:sub(tab + 1)
    end
    line_no = line_no + 1
  end
  pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
  math.randomseed(id * 7919 + os.time())
  wrapped = 0
end

-- spread requests out (uniform 0 .. 2 x pause, mean pause): with a fixed
-- pause every connection of a thread fires in the same millisecond, and the
-- latency measured is that of the burst, not of the server at that rate
function delay()
  if pause == 0 then return 0 end
  return math.random(0, 2 * pause)
end

function request()
  i = i + 1
  if i > n then i = 1; wrapped = wrapped + 1 end
  return wrk.format("POST", wrk.path, {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = sigs[i],
  }, bodies[i])
end

function done(summary, latency, requests)
  local wraps = 0
  for _, t in ipairs(threads) do wraps = wraps + (t:get("wrapped") or 0) end
  io.write(string.format("BENCH rps=%.0f p50_us=%d p99_us=%d non2xx=%d errors=%d wraps=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, wraps))
end
