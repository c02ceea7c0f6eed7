-- schedule_adopt(replica, lease_ms) -> {} | {tick, batch, kind, from}
-- The newest run still `running` whose lease (the per-tick lock) has expired
-- was abandoned by a replica that died mid-refresh: take its lease and hand
-- the run to this replica, which enqueues the same batch again (enqueue skips
-- logins already in the batch, so nothing is enqueued twice).
local replica, lease = ARGV[1], tonumber(ARGV[2])
local newest = redis.call('ZREVRANGE', K.schedule_runs, 0, 0)[1]
if not newest then return {} end
local run = schedule_run_key(newest)
local lock = schedule_tick_key(newest)
if redis.call('HGET', run, 'state') ~= 'running' then return {} end
if redis.call('EXISTS', lock) == 1 then return {} end
local f = redis.call('HMGET', run, 'replica', 'batch', 'kind')
redis.call('SET', lock, replica, 'PX', lease)
redis.call('HSET', run, 'replica', replica, 'adopted_from', f[1] or '', 'adopted', now_ms())
redis.call('HINCRBY', run, 'adoptions', 1)
return { newest, f[2] or '', f[3] or 'tick', f[1] or '' }
