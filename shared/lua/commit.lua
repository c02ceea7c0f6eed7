-- commit(id, token, login, commit_id, state, due, request_id, deadline,
--        attempts, polls, auths, retries, err_code, err_http, err_msg, last,
--        result_sink, result_data, result_ttl_ms, sessions)
--   -> 1 applied | 0 fenced | 2 already applied (a retry of this commit_id)
-- result_sink ('' | 'file' | 'redis') comes with a succeeded job: the login's
-- result pointer `result:<login>` (the file's path, or the gzip payload
-- itself, and the login it belongs to) is written here, with its TTL, in the
-- same atomic step.
-- Applies one transition computed by the worker, only if the caller still holds
-- the step: the job exists and belongs to `login`, its fencing token equals
-- the caller's and its lease is live. A stale worker (lease expired, reaped,
-- claimed elsewhere, or its job lost with Redis' data) changes nothing.
-- `commit_id` names this commit: a retry after a lost answer (a timeout) is
-- recognised as already applied, not taken for a fenced step.
-- An applied commit resets `claims` (see claim.lua): the job did not kill
-- the worker that ran this step; a fenced one gives its claim back.
local id, token, login, commit_id, state = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job = P .. 'job:' .. id
local held = redis.call('HMGET', job, 'login', 'token', 'commit_id')
if held[3] == commit_id then return 2 end
if held[1] ~= login then return 0 end
if held[2] ~= token or not redis.call('ZSCORE', P .. 'leases', id) then
  give_back_claim(job)
  return 0
end
local now = now_ms()
redis.call('ZREM', P .. 'leases', id)
-- the claim is spent: nothing else may commit or call under it
redis.call('HDEL', job, 'token')
redis.call('HSET', job,
  'request_id', ARGV[7], 'deadline', ARGV[8], 'attempts', ARGV[9],
  'polls', ARGV[10], 'auths', ARGV[11], 'retries', ARGV[12],
  'err_code', ARGV[13], 'err_http', ARGV[14], 'err_msg', ARGV[15],
  'last', ARGV[16], 'updated', now, 'commit_id', commit_id,
  'sessions', ARGV[20], 'claims', 0)
if state == 'succeeded' and ARGV[17] ~= '' then
  local result = P .. 'result:' .. login
  redis.call('DEL', result)
  redis.call('HSET', result, 'job', id, 'login', login, 'stored', now,
    'sink', ARGV[17], 'data', ARGV[18])
  redis.call('PEXPIRE', result, tonumber(ARGV[19]))
  local at = ARGV[18]
  if ARGV[17] == 'redis' then at = result end
  redis.call('HSET', job, 'result_sink', ARGV[17], 'result_at', at)
end
if TERMINAL[state] then
  finish(id, state, now)
else
  local old = redis.call('HGET', job, 'state')
  redis.call('HSET', job, 'state', state)
  count_move(redis.call('HGET', job, 'batch'), old, state)
  redis.call('ZADD', due_key(id), tonumber(ARGV[6]), id)
  if ARGV[8] ~= '' then
    redis.call('ZADD', P .. 'deadlines', tonumber(ARGV[8]), id)
  end
end
return 1
