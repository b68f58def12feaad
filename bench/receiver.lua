-- wrk script: the same signed GitHub push body, a fresh X-GitHub-Delivery per request.
-- BODY_FILE, SIGNATURE and TARGET_PATH come from the environment (bench/receiver.py sets them).
-- Each wrk thread gets its own number (setup), so delivery ids never collide across threads.
local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_no", threads)
end

local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local counter = 0
local prefix

init = function(args)
   math.randomseed(os.time() + (thread_no or 0) * 7919)
   prefix = string.format("%08x-%02d", math.random(0, 0x7fffffff), thread_no or 0)
end

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
