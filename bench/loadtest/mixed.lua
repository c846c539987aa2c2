-- Mixed lossd traffic for wrk: each thread walks a fixed schedule of request kinds (small
-- evaluations, batches, v2, streams, bad inputs, big bodies) and counts the answers by status.
--
--   wrk -s mixed.lua URL -- MANIFEST
--
-- MANIFEST (written by bench/loadtest/payloads.py) has one line per kind,
-- "kind<TAB>method<TAB>path<TAB>content-type<TAB>body file", and one line
-- "schedule<TAB>kind,kind,...". done() prints one line, "LOADTEST {json}", for the runner.

local requests = {}
local schedule = {}
local position = 0
issued = {}         -- kind -> requests sent (read by done() through thread:get)
statuses = {}       -- "200" -> responses received
no_retry_after = 0  -- 503 answers without a Retry-After header

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  return data
end

local function split(text, separator)
  local fields = {}
  for field in string.gmatch(text, "[^" .. separator .. "]+") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  for line in io.lines(args[1]) do
    local f = split(line, "\t")
    if f[1] == "schedule" then
      schedule = split(f[2], ",")
    else
      requests[f[1]] = wrk.format(f[2], f[3], { ["Content-Type"] = f[4] }, read_file(f[5]))
      issued[f[1]] = 0
    end
  end
  -- Threads start at different points of the schedule, so big bodies do not arrive together.
  position = (id * 37) % #schedule
end

function request()
  position = position % #schedule + 1
  local kind = schedule[position]
  issued[kind] = issued[kind] + 1
  return requests[kind]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == 503 and headers["retry-after"] == nil and headers["Retry-After"] == nil then
    no_retry_after = no_retry_after + 1
  end
end

local function json_object(counts)
  local parts = {}
  for key, value in pairs(counts) do
    table.insert(parts, string.format("%q:%d", key, value))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function add(total, counts)
  for key, value in pairs(counts) do
    total[key] = (total[key] or 0) + value
  end
end

function done(summary, latency, requests)
  local all_issued, all_statuses, missing = {}, {}, 0
  for _, thread in ipairs(threads) do
    add(all_issued, thread:get("issued"))
    add(all_statuses, thread:get("statuses"))
    missing = missing + thread:get("no_retry_after")
  end
  local e = summary.errors
  io.write(string.format(
    'LOADTEST {"duration_us":%d,"requests":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},'
      .. '"latency_us":{"mean":%.0f,"p50":%d,"p99":%d,"max":%d},'
      .. '"issued":%s,"statuses":%s,"no_retry_after":%d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency:percentile(50), latency:percentile(99), latency.max,
    json_object(all_issued), json_object(all_statuses), missing
  ))
end
