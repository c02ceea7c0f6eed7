-- commit(id, seq, state, due, request_id, deadline, attempts, polls, auths,
--        retries, err_code, err_http, err_msg, last) -> 1 applied | 0 fenced
-- Applies one transition computed by the worker, only if the caller still holds
-- the step: its fencing token equals the job's and its lease is live. A stale
-- worker (lease expired, reaped, claimed elsewhere) changes nothing.
local id, seq, state = ARGV[1], ARGV[2], ARGV[3]
local job = P .. 'job:' .. id
if redis.call('HGET', job, 'seq') ~= seq then return 0 end
if not redis.call('ZSCORE', P .. 'leases', id) then return 0 end
local now = now_ms()
redis.call('ZREM', P .. 'leases', id)
redis.call('HSET', job,
  'request_id', ARGV[5], 'deadline', ARGV[6], 'attempts', ARGV[7],
  'polls', ARGV[8], 'auths', ARGV[9], 'retries', ARGV[10],
  'err_code', ARGV[11], 'err_http', ARGV[12], 'err_msg', ARGV[13],
  'last', ARGV[14], 'updated', now)
if TERMINAL[state] then
  finish(id, state, now)
else
  local old = redis.call('HGET', job, 'state')
  redis.call('HSET', job, 'state', state)
  count_move(redis.call('HGET', job, 'batch'), old, state)
  redis.call('ZADD', due_key(id), tonumber(ARGV[4]), id)
  if ARGV[6] ~= '' then
    redis.call('ZADD', P .. 'deadlines', tonumber(ARGV[6]), id)
  end
end
return 1
