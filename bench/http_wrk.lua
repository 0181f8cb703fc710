-- wrk script for the AWS door: sends the requests of one scenario, counting every response by
-- status code and whether its body is the expected one; done() prints one parseable line for
-- bench/http_wrk.py:
--
--   appflow-wrk {"requests":N,"duration_us":D,"p50_us":X,"p99_us":Y,"statuses":{"200":N},
--                "body_ok":N,"errors":{"connect":0,"read":0,"write":0,"timeout":0,"status":0}}
--
-- Script arguments (after `--` on wrk's command line), first the mode:
--   stop FLOW [EXPECTED_BODY]        POST /stop-flow {"flowName": FLOW} (also the form without
--                                    "stop": FLOW [EXPECTED_BODY], and $APPFLOW_FLOW)
--   fixed PATH BODY EXPECTED_BODY [METHOD]
--                                    POST (or METHOD) PATH with BODY, e.g. /describe-flow; an
--                                    empty BODY sends none (GET /tags/ARN)
--   list PAGE                        POST /list-flows {"maxResults": PAGE, "nextToken": T}
--   start FLOW PREFIX EXPECTED       POST /start-flow {"flowName": FLOW, "clientToken": new}
--   churn TEMPLATE PREFIX EXPECTED_CREATE EXPECTED_DELETE
--                                    POST /create-flow TEMPLATE with @NAME@ a new name, then
--                                    POST /delete-flow {"flowName": that name}
--   toggle PREFIX WIDTH PER_THREAD EXPECTED_START EXPECTED_STOP
--                                    POST /start-flow of a Suspended scheduled flow, then
--                                    POST /stop-flow of it, and again: every request changes
--                                    its flow's state
--   describe-mix PREFIX WIDTH COUNT  POST /describe-flow {"flowName": the next name}
-- stop and fixed send one static request, built once; the others build each request in
-- request(), which wrk calls for a connection's next request right after response() has run
-- for its last one. Checks:
-- - list: a page with a nextToken must hold exactly PAGE flows, the last page at most PAGE.
--   Each nextToken goes into a queue; the next request takes one from it, or starts a new
--   walk through the table when it is empty, so every page continues a previous one.
-- - start: the body equals EXPECTED once its executionId (a UUID) reads "UUID".
-- - churn: a create's body equals EXPECTED_CREATE once the flow's name in its ARN reads
--   "NAME", and that name is queued; the next request deletes a queued name if there is one,
--   else creates another. A delete's body must equal EXPECTED_DELETE.
-- - toggle: wrk does not say which connection request() is for, so flows are not pinned to
--   connections but to requests in flight: thread t owns the PER_THREAD flows PREFIX + index
--   (t * PER_THREAD .. + PER_THREAD - 1, zero-padded to WIDTH). PER_THREAD is the thread's
--   connection count plus one, so each connection's request in flight has a flow of its own:
--   wrk calls request() once on the first thread before the run, to check the request's
--   syntax, and never sends that request, so its flow is never answered. A request takes a
--   started flow waiting for its stop if there is one, else a free (Suspended) flow to start;
--   no flow is ever in two requests at once, so each request changes its flow's state. A
--   response names its flow in its ARN: the flow must be in flight with that operation, and
--   the body must equal EXPECTED_START or EXPECTED_STOP (the pre-checked bodies, NAME for the
--   flow's name). A started flow then waits for its stop, a stopped one is free again. A flow
--   whose request failed is lost to the run (its state is unknown): http_wrk.py stops every
--   flow of the pool after the run. Should every flow be lost, requests name a flow that
--   does not exist, and count as errors.
-- - describe-mix: the next name of PREFIX + 0 .. COUNT-1 (each thread starting at its own
--   offset); a response must be 200 and name in "flowName" a flow one of this thread's
--   requests in flight asked for, each such request answered once.
-- Without an expected body (stop only), bodies are not compared.

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads) -- 0, 1, ...: which flows a toggle thread owns
   table.insert(threads, thread)
end

-- JSON string literal (names and tokens are ASCII; escape what JSON requires anyway).
local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
   end) .. '"'
end

local UUID = "^" .. string.rep("%x", 8) .. "%-" .. string.rep("%x", 4) .. "%-" ..
   string.rep("%x", 4) .. "%-" .. string.rep("%x", 4) .. "%-" .. string.rep("%x", 12) .. "$"

statuses = {}
body_ok = 0
local mode, expected, expected_delete
local page, flow, prefix, before, after -- churn: the template around its @NAME@
local head, tail -- start: the expected body around its UUID
local counter = 0
local queue, qhead, qtail = {}, 1, 0 -- list: tokens to continue; churn: names to delete
local name_prefix, width, names_first, names_count -- toggle and describe-mix
local in_flight = {} -- toggle: name -> "start" or "stop"; describe-mix: name -> requests
local started, free = {}, {} -- toggle: flows waiting for their stop; Suspended flows
local start_head, start_tail, stop_head, stop_tail -- toggle: expected bodies around NAME

local function push(v)
   qtail = qtail + 1
   queue[qtail] = v
end

local function pop()
   if qhead > qtail then
      return nil
   end
   local v = queue[qhead]
   queue[qhead] = nil
   qhead = qhead + 1
   return v
end

local function post(path, body)
   return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

-- Simple FIFO queues for toggle (first, last, items).
local function fifo()
   return {first = 1, last = 0}
end

local function fifo_push(q, v)
   q.last = q.last + 1
   q[q.last] = v
end

local function fifo_pop(q)
   if q.first > q.last then
      return nil
   end
   local v = q[q.first]
   q[q.first] = nil
   q.first = q.first + 1
   return v
end

local function flow_name(i)
   return name_prefix .. string.format("%0" .. width .. "d", i)
end

-- The text around NAME in an expected body.
local function around_name(body)
   local s, e = body:find("NAME", 1, true)
   return body:sub(1, s - 1), body:sub(e + 1)
end

function init(args)
   mode = args[1]
   if mode == "fixed" then
      wrk.method, wrk.path, wrk.body = args[5] or "POST", args[2], args[3]
      if wrk.body == "" then -- a GET: no body, so no Content-Length either
         wrk.body = nil
      end
      wrk.headers["Content-Type"] = "application/json"
      expected = args[4]
      request = nil
   elseif mode == "list" then
      page = tonumber(args[2])
   elseif mode == "start" then
      flow, prefix, expected = args[2], args[3], args[4]
      local s, e = expected:find("UUID", 1, true)
      head, tail = expected:sub(1, s - 1), expected:sub(e + 1)
   elseif mode == "toggle" then
      name_prefix, width = args[2], tonumber(args[3])
      local per = tonumber(args[4])
      start_head, start_tail = around_name(args[5])
      stop_head, stop_tail = around_name(args[6])
      started, free = fifo(), fifo()
      local first = (thread_index or 0) * per
      for i = first, first + per - 1 do
         fifo_push(free, flow_name(i))
      end
   elseif mode == "describe-mix" then
      name_prefix, width, names_count = args[2], tonumber(args[3]), tonumber(args[4])
      names_first = (thread_index or 0) * 7919 -- threads start apart, then all cycle
   elseif mode == "churn" then
      local template
      template, prefix, expected, expected_delete = args[2], args[3], args[4], args[5]
      local s, e = template:find("@NAME@", 1, true)
      before, after = template:sub(1, s - 1), template:sub(e + 1)
   else
      local first = 1
      if mode == "stop" then
         first = 2
      end
      mode = "stop"
      local name = args[first] or os.getenv("APPFLOW_FLOW") or "bench_suspended"
      expected = args[first + 1]
      wrk.method, wrk.path = "POST", "/stop-flow"
      wrk.headers["Content-Type"] = "application/json"
      wrk.body = '{"flowName": ' .. json_string(name) .. '}'
      request = nil -- wrk then sends its static request, built once
   end
end

function request()
   if mode == "list" then
      local token = pop()
      local body = '{"maxResults":' .. page
      if token then
         body = body .. ',"nextToken":' .. json_string(token)
      end
      return post("/list-flows", body .. "}")
   elseif mode == "start" then
      counter = counter + 1
      return post("/start-flow", '{"flowName":' .. json_string(flow) .. ',"clientToken":' ..
                     json_string(prefix .. counter) .. '}')
   elseif mode == "toggle" then
      local name, op = fifo_pop(started), "stop"
      if not name then
         name, op = fifo_pop(free), "start"
      end
      if not name then -- every flow lost to failed requests: a request that fails as well
         return post("/start-flow", '{"flowName":' .. json_string(name_prefix .. "lost") .. '}')
      end
      in_flight[name] = op
      return post("/" .. op .. "-flow", '{"flowName":' .. json_string(name) .. '}')
   elseif mode == "describe-mix" then
      local name = flow_name((names_first + counter) % names_count)
      counter = counter + 1
      in_flight[name] = (in_flight[name] or 0) + 1
      return post("/describe-flow", '{"flowName":' .. json_string(name) .. '}')
   end
   local name = pop()
   if name then
      return post("/delete-flow", '{"flowName":' .. json_string(name) .. '}')
   end
   counter = counter + 1
   return post("/create-flow", before .. prefix .. counter .. after)
end

local function count_flows(body)
   local n, at = 0, 1
   while true do
      local s, e = body:find('"flowArn":', at, true)
      if not s then
         return n
      end
      n, at = n + 1, e + 1
   end
end

-- The token, found with plain searches: a pattern match tried at each of a page's 20 KB of
-- positions cost wrk five times the rest of its work, and made the driver the limit.
local function next_token(body)
   local _, e = body:find('"nextToken":"', 1, true)
   if not e then
      return nil
   end
   local close = body:find('"', e + 1, true)
   local token = close and body:sub(e + 1, close - 1)
   if token and not token:find("\\", 1, true) then
      return token
   end
   return false -- escaped or unterminated: not a token this check can pass on
end

local function list_ok(body)
   local token = next_token(body)
   if token == false then
      return false
   end
   local n = count_flows(body)
   if token then
      push(token)
      return n == page
   end
   return n <= page and body:sub(1, 9) == '{"flows":'
end

-- The pre-checked body with a UUID where "UUID" stands, compared piece by piece: a pattern
-- searched through each body cost wrk more than the server's answer did.
local function start_ok(body)
   local n = #body - #head - #tail
   return n == 36 and body:sub(1, #head) == head and body:sub(-#tail) == tail and
      body:sub(#head + 1, #head + 36):find(UUID) ~= nil
end

local function churn_ok(body)
   if body == expected_delete then
      return true
   end
   local name = body:match('flow/([^"]*)"')
   if name and body:gsub('flow/[^"]*"', 'flow/NAME"', 1) == expected then
      push(name)
      return true
   end
   return false
end

-- The flow a toggle response names: the text between "flow/" and the next quote.
local function arn_name(body)
   local _, e = body:find('flow/', 1, true)
   local close = e and body:find('"', e + 1, true)
   return close and body:sub(e + 1, close - 1)
end

local function toggle_ok(body)
   local name = arn_name(body)
   local op = name and in_flight[name]
   if not op then
      return false
   end
   local head, tail = start_head, start_tail
   if op == "stop" then
      head, tail = stop_head, stop_tail
   end
   if body ~= head .. name .. tail then
      return false -- its state is unknown now: the flow stays out of the run
   end
   in_flight[name] = nil
   if op == "start" then
      fifo_push(started, name)
   else
      fifo_push(free, name)
   end
   return true
end

local function describe_mix_ok(body)
   local _, e = body:find('"flowName":"', 1, true)
   local close = e and body:find('"', e + 1, true)
   local name = close and body:sub(e + 1, close - 1)
   local n = name and in_flight[name]
   if not n then
      return false
   end
   if n > 1 then
      in_flight[name] = n - 1
   else
      in_flight[name] = nil
   end
   return body:find("flow/" .. name .. '"', 1, true) ~= nil
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   local good
   if status ~= 200 and mode ~= "stop" and mode ~= "fixed" then
      good = false
   elseif mode == "list" then
      good = list_ok(body)
   elseif mode == "start" then
      good = start_ok(body)
   elseif mode == "churn" then
      good = churn_ok(body)
   elseif mode == "toggle" then
      good = toggle_ok(body)
   elseif mode == "describe-mix" then
      good = describe_mix_ok(body)
   else
      good = expected ~= nil and body == expected
   end
   if good then
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
