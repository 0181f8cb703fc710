-- wrk script for the AWS door: POST /stop-flow {"flowName": FLOW} with Content-Type
-- application/json, counting every response by status code and whether its body is exactly
-- the expected bytes; done() prints one parseable line for bench/http_wrk.py:
--
--   appflow-wrk {"requests":N,"duration_us":D,"p50_us":X,"p99_us":Y,"statuses":{"200":N},
--                "body_ok":N,"errors":{"connect":0,"read":0,"write":0,"timeout":0,"status":0}}
--
-- Script arguments (after `--` on wrk's command line): FLOW [EXPECTED_BODY]. Without them the
-- flow comes from $APPFLOW_FLOW (default bench_suspended) and bodies are not compared.
--
-- The request is built once in init() and sent as wrk's static request; response() runs per
-- response in each wrk thread's own Lua state, and done() gathers the counts with thread:get.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- JSON string literal for a flow name (names are ASCII; escape what JSON requires anyway).
local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
   end) .. '"'
end

statuses = {}
body_ok = 0
local expected_body = nil

function init(args)
   local flow = args[1] or os.getenv("APPFLOW_FLOW") or "bench_suspended"
   expected_body = args[2]
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.body = '{"flowName": ' .. json_string(flow) .. '}'
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if expected_body ~= nil and body == expected_body then
      body_ok = body_ok + 1
   end
end

function done(summary, latency, requests)
   local total, ok = {}, 0
   for _, thread in ipairs(threads) do
      for code, n in pairs(thread:get("statuses")) do
         total[code] = (total[code] or 0) + n
      end
      ok = ok + thread:get("body_ok")
   end
   local parts = {}
   for code, n in pairs(total) do
      table.insert(parts, string.format('"%d":%d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'appflow-wrk {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
      '"statuses":{%s},"body_ok":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      table.concat(parts, ","), ok, e.connect, e.read, e.write, e.timeout, e.status))
end
