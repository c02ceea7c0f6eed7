-- commit(id, seq, state, due, request_id, deadline, attempts, polls, auths,
--        retries, err_code, err_http, err_msg, last,
--        result_sink, result_data, result_ttl_ms, sessions) -> 1 applied | 0 fenced
-- result_sink ('' | 'file' | 'redis') comes with a succeeded job: the login's
-- result pointer `result:<login>` (the file's path, or the gzip payload
-- itself) is written here, with its TTL, in the same atomic step.
-- Applies one transition computed by the worker, only if the caller still holds
-- the step: its fencing token equals the job's and its lease is live. A stale
-- worker (lease expired, reaped, claimed elsewhere) changes nothing.
-- An applied commit resets `claims` (see claim.lua): the job did not kill
-- the worker that ran this step; a fenced one gives its claim back.
local id, seq, state = ARGV[1], ARGV[2], ARGV[3]
local job = P .. 'job:' .. id
if redis.call('HGET', job, 'seq') ~= seq or not redis.call('ZSCORE', P .. 'leases', id) then
  give_back_claim(job)
  return 0
end
local now = now_ms()
redis.call('ZREM', P .. 'leases', id)
redis.call('HSET', job,
  'request_id', ARGV[5], 'deadline', ARGV[6], 'attempts', ARGV[7],
  'polls', ARGV[8], 'auths', ARGV[9], 'retries', ARGV[10],
  'err_code', ARGV[11], 'err_http', ARGV[12], 'err_msg', ARGV[13],
  'last', ARGV[14], 'updated', now, 'sessions', ARGV[18], 'claims', 0)
if state == 'succeeded' and ARGV[15] ~= '' then
  local login = redis.call('HGET', job, 'login')
  local result = P .. 'result:' .. login
  redis.call('DEL', result)
  redis.call('HSET', result, 'job', id, 'stored', now, 'sink', ARGV[15], 'data', ARGV[16])
  redis.call('PEXPIRE', result, tonumber(ARGV[17]))
  local at = ARGV[16]
  if ARGV[15] == 'redis' then at = result end
  redis.call('HSET', job, 'result_sink', ARGV[15], 'result_at', at)
end
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
