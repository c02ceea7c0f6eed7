-- The floor of an enqueue (BENCHMARKS.md, issue 14's ninth pass): not
-- flinkq's enqueue.lua, but the least an enqueue that keeps one unfinished
-- job per login does per login: the job's hash (login, batch, state,
-- created), its due entry and one pointer naming the login's job, read
-- first so a login with a job is skipped. It leaves out what flinkq's also
-- does: the product in the pointers' names, the skip of a login whose
-- newest job is of this batch, the second (active) pointer, the priority,
-- the batch's counters and index. Its keys are its own (`job:<id>`,
-- `latest:<login>`, `due`, `counts`), on the measurement's private server.
-- Measured by the hand-run test `redis_cpu_floor_of_an_enqueue`
-- (tests/tests/enqueue_scale.rs); never loaded by flinkq.
-- ARGV: batch, now, login1, id1, login2, id2, ... (at most a few thousand)
local batch, now = ARGV[1], ARGV[2]
local count = (#ARGV - 2) / 2
local pointers = {}
for k = 1, count do pointers[k] = 'latest:' .. ARGV[2 * k + 1] end
local held = redis.call('MGET', unpack(pointers))
local due, set, c = {}, {}, 0
for k = 1, count do
  if not held[k] then
    c = c + 1
    local id = ARGV[2 * k + 2]
    redis.call('HSET', 'job:' .. id, 'login', ARGV[2 * k + 1], 'batch', batch, 'state', 'queued',
      'created', now)
    due[2 * c - 1] = now
    due[2 * c] = id
    set[2 * c - 1] = pointers[k]
    set[2 * c] = id
  end
end
if c > 0 then
  redis.call('ZADD', 'due', unpack(due))
  redis.call('MSET', unpack(set))
  redis.call('HINCRBY', 'counts', 'queued', c)
end
return c
