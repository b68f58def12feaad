-- wrk script: the same signed GitHub push body, a fresh X-GitHub-Delivery per request.
-- BODY_FILE and SIGNATURE come from the environment (bench/receiver.py writes them).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local counter = 0
local prefix = string.format("%08x", math.random(0, 0x7fffffff))

request = function()
   counter = counter + 1
   local headers = {
      ["Content-Type"] = "application/json",
      ["User-Agent"] = "GitHub-Hookshot/bench",
      ["X-GitHub-Event"] = "push",
      ["X-GitHub-Delivery"] = string.format("%s-%012d", prefix, counter),
      ["X-Hub-Signature-256"] = os.getenv("SIGNATURE"),
   }
   return wrk.format("POST", os.getenv("TARGET_PATH"), headers, body)
end

done = function(summary, latency, requests)
   io.write(string.format("JSON {\"requests\": %d, \"errors\": %d, \"non2xx\": %d, \"rps\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f}\n",
      summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      summary.errors.status, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
