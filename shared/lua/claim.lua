-- claim(n, lease_ms, token_base, authorize_timeout_ms) -> {now, next_due or -1, {{id, field, value, ...}, ...}}
-- (each job's fields include its due time as the virtual field `due`)
-- Moves at most n due jobs into leases (bounded by LIMIT: never an unbounded
-- range), high priority first, then normal, then low; gives each job a
-- fresh fencing token (`token`: the caller's random base and the job's index
-- in this call, so tokens never repeat, even after Redis loses data), and
-- returns their snapshots plus the earliest due time still
-- waiting in any queue, so the claimer can sleep exactly until then.
-- Each claim adds one to the job's `claims` (reset by an applied commit, so
-- a job that keeps killing its worker is seen as a poison pill). The first
-- claim starts the job's clock and puts its authorize deadline in
-- `deadlines`, so reap ends it even if no worker claims it again.
local n = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local token_base = ARGV[3]
local authorize_timeout = tonumber(ARGV[4])
local now = now_ms()
local claimed = {}
local next_due = nil
for _, queue in ipairs(DUE_QUEUES) do
  local want = n - #claimed
  local due = {}
  if want > 0 then
    due = redis.call('ZRANGE', queue, '-inf', now, 'BYSCORE', 'LIMIT', 0, want, 'WITHSCORES')
  end
  for i = 1, #due, 2 do
    local id, due_at = due[i], due[i + 1]
    -- removed first: an entry whose hash is gone (evicted, deleted) is
    -- dropped here instead of blocking the queue
    redis.call('ZREM', queue, id)
    local job = job_key(id)
    local state = redis.call('HGET', job, 'state')
    if state and not TERMINAL[state] then
      redis.call('HSET', job, 'token', token_base .. '.' .. (#claimed + 1))
      redis.call('HINCRBY', job, 'claims', 1)
      if not redis.call('HGET', job, 'started') then
        redis.call('HSET', job, 'started', now)
        redis.call('ZADD', K.deadlines, 'NX', now + authorize_timeout, id)
      end
      redis.call('ZADD', K.leases, now + lease, id)
      local fields = redis.call('HGETALL', job)
      table.insert(fields, 1, id)
      fields[#fields + 1] = 'due'
      fields[#fields + 1] = due_at
      claimed[#claimed + 1] = fields
    end
  end
  local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
  if head[2] and (not next_due or tonumber(head[2]) < tonumber(next_due)) then
    next_due = head[2]
  end
end
return { now, next_due or '-1', claimed }
