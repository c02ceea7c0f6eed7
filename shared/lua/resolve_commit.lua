-- resolve_commit(id, token, commit_id) -> 1 applied | 0 not applied, and never will be
-- Settles a commit whose answer was lost (a timeout, a cut connection) after
-- the worker stopped retrying it: if the job holds `commit_id`, it was
-- applied. If not, and the caller's token still holds, the token is deleted
-- so the lost commit, should it still reach Redis late (a slow link, another
-- connection), is fenced: the answer "not applied" stays true. The job's
-- lease then expires and the step runs again.
local id, token, commit_id = ARGV[1], ARGV[2], ARGV[3]
local job = job_key(id)
local held = redis.call('HMGET', job, 'token', 'commit_id')
if held[2] == commit_id then return 1 end
if holds(held[1], token) then
  redis.call('HDEL', job, 'token')
end
return 0
