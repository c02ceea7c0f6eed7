-- purge_dead(id...) -> {removed, skipped}
-- Deletes the given dead letters (failed or timed-out jobs) for good. An id
-- that is not a dead letter (requeued since, or unknown) is left alone and
-- counted skipped: a console selection can be stale.
local removed, skipped = 0, 0
for i = 1, #ARGV do
  if redis.call('ZSCORE', K.dead, ARGV[i]) then
    delete_job(ARGV[i])
    removed = removed + 1
  else
    skipped = skipped + 1
  end
end
return { removed, skipped }
