-- tpsd: one node's share of every shared pool, decided atomically inside
-- Redis on Redis's own clock (docs/cluster.md has the algorithm and its
-- guarantees). Each daemon runs this once per tick with its report and
-- applies the answer at its next tick (daemon/cluster/cluster-node.ts).
--
-- KEYS[1]      the meta hash: the run id of the server that holds the state,
--              and since when that server has been learning (state lost)
-- KEYS[1 + i]  the hash of the report's pool i: one field per node instance
--              ("node_id/instance"), a JSON record
--              {node, exp, grant, held, est, cap, d[4], g, t, q, b}
-- ARGV[1]      the report, JSON: {node, inst, lease_ms, leave?, pools: [
--              {cap, held, est, d: [demand tps by priority 0..3], g: granted
--              tps, t: throttled (429) tps, q: demand tps, b: pool burst}]}
-- Returns JSON {now, mode, learning_ms, pools: [{grant, target, nodes, eff,
-- cap, g, t, q, b}]}; with `leave` the node's records are deleted instead.
--
-- Invariant: for each pool, the sum over live records of max(grant, held)
-- stays within the pool's capacity. A node's grant shrinks at once; it grows
-- only into the capacity the other records leave; `held` (what the node
-- enforces now) keeps its place reserved until the node reports it applied a
-- smaller grant. Records expire with their lease, and so return their share.

local report = cjson.decode(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A rate or a count from a report or a record (never a time: times exceed the clamp).
local function num(x)
  local v = tonumber(x)
  if v == nil or v ~= v or v < 0 then return 0 end
  if v > 1e12 then return 1e12 end
  return v
end

local lease = math.max(1, num(report.lease_ms))
local me = tostring(report.node) .. '/' .. tostring(report.inst)

if report.leave then
  for i = 2, #KEYS do redis.call('HDEL', KEYS[i], me) end
  return cjson.encode({now = now, mode = 'left', learning_ms = 0, pools = {}})
end

-- A server that is not the one the state was written on (restart, failover)
-- or that lost the meta hash: nodes may hold shares it does not know of, so
-- for one lease it grants nobody more than it holds.
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or '?'
local meta = redis.call('HMGET', KEYS[1], 'run_id', 'learning_since')
local since = tonumber(meta[2]) or now
if meta[1] ~= run_id then
  since = now
  redis.call('HSET', KEYS[1], 'run_id', run_id, 'learning_since', since)
end
local learning = now < since + lease

-- Priority water-fill of `budget` over entries' demand: class by class,
-- max-min within a class; what no demand takes is split evenly.
local function waterfill(budget, entries)
  local alloc = {}
  for k = 1, #entries do alloc[k] = 0 end
  for prio = 1, 4 do
    local want, open = {}, {}
    for k, e in ipairs(entries) do
      local w = num(e.d and e.d[prio])
      if w > 0 then want[k] = w; open[#open + 1] = k end
    end
    while budget > 1e-9 and #open > 0 do
      local each, used, still = budget / #open, 0, {}
      for _, k in ipairs(open) do
        local add = math.min(each, want[k])
        alloc[k] = alloc[k] + add
        want[k] = want[k] - add
        used = used + add
        if want[k] > 1e-9 then still[#still + 1] = k end
      end
      budget = budget - used
      open = still
    end
  end
  if budget > 1e-9 and #entries > 0 then
    for k = 1, #entries do alloc[k] = alloc[k] + budget / #entries end
  end
  return alloc
end

local function share(key, p)
  local raw = redis.call('HGETALL', key)
  local others, dead, nodes = {}, {}, {}
  local count = 1
  nodes[tostring(report.node)] = true
  for j = 1, #raw, 2 do
    local ok, r = pcall(cjson.decode, raw[j + 1])
    if not ok or type(r) ~= 'table' or (tonumber(r.exp) or 0) <= now then
      dead[#dead + 1] = raw[j]
    elseif raw[j] ~= me then
      others[#others + 1] = r
      local n = tostring(r.node)
      if not nodes[n] then nodes[n] = true; count = count + 1 end
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end

  local cap, est = num(p.cap), num(p.est)
  local reserved = 0
  for _, r in ipairs(others) do
    cap = math.min(cap, num(r.cap))
    est = math.min(est, num(r.est))
    reserved = reserved + math.max(num(r.grant), num(r.held))
  end
  local eff = math.min(cap, est)
  local mine = {node = tostring(report.node), d = p.d, est = num(p.est), cap = num(p.cap),
    g = num(p.g), t = num(p.t), q = num(p.q), b = num(p.b)}
  local entries = {}
  for k, r in ipairs(others) do entries[k] = r end
  entries[#entries + 1] = mine
  local target = waterfill(eff, entries)[#entries]

  local held = math.min(num(p.held), cap)
  local grant
  if learning then
    grant = math.min(held, cap - reserved)
  elseif target <= held then
    grant = target
  else
    grant = math.max(held, math.min(target, eff - reserved))
  end
  grant = math.max(0, math.min(grant, cap))
  mine.exp, mine.grant, mine.held = now + lease, grant, held
  redis.call('HSET', key, me, cjson.encode(mine))
  redis.call('PEXPIRE', key, 2 * lease)

  local out = {grant = grant, target = target, nodes = count, eff = eff, cap = cap, g = 0, t = 0, q = 0, b = 0}
  for _, r in ipairs(entries) do
    out.g, out.t, out.q, out.b = out.g + num(r.g), out.t + num(r.t), out.q + num(r.q), out.b + num(r.b)
  end
  return out
end

local pools = {}
for i, p in ipairs(report.pools or {}) do pools[i] = share(KEYS[i + 1], p) end
local mode = 'coordinated'
if learning then mode = 'learning' end
return cjson.encode({now = now, mode = mode, learning_ms = math.max(0, since + lease - now), pools = pools})
