-- schedule_claim(tick_ms, replica, lock_ttl_ms, batch, kind, keep) -> {won, holder}
-- One scheduler replica wins each cron tick. Takes the per-tick lock
-- (`schedule:tick:<tick_ms>`, SET NX PX semantics) and, when it wins, records
-- the run in the same atomic step: `schedule:run:<tick_ms>` (hash),
-- `schedule:runs` (zset tick -> tick, trimmed to the newest `keep`) and
-- `schedule:last` (the newest tick run).
-- won: 1 this replica runs the tick; 0 another replica holds or ran it
-- (holder says which); -1 the tick is not newer than `schedule:last`.
local tick, replica, ttl, batch, kind, keep =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local lock = schedule_tick_key(tick)
local run = schedule_run_key(tick)
local runs = K.schedule_runs
local last_key = K.schedule_last

local holder = redis.call('GET', lock)
if holder then return { 0, holder } end
if redis.call('ZSCORE', runs, tick) then
  return { 0, redis.call('HGET', run, 'replica') or '' }
end
local last = tonumber(redis.call('GET', last_key) or '')
if last and last >= tonumber(tick) then
  return { -1, tostring(last) }
end

redis.call('SET', lock, replica, 'NX', 'PX', ttl)
local now = now_ms()
redis.call('HSET', run, 'tick', tick, 'replica', replica, 'batch', batch,
  'kind', kind, 'state', 'running', 'claimed', now)
redis.call('ZADD', runs, tonumber(tick), tick)
redis.call('SET', last_key, tick)

-- retention: keep the newest `keep` run records
local excess = redis.call('ZCARD', runs) - keep
if excess > 0 then
  local old = redis.call('ZRANGE', runs, 0, excess - 1)
  for _, t in ipairs(old) do
    redis.call('DEL', schedule_run_key(t))
  end
  redis.call('ZREMRANGEBYRANK', runs, 0, excess - 1)
end
return { 1, replica }
