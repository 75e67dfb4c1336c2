-- admit.lua: check an IP's cooldown, then grant a connection lease if the IP
-- holds fewer than LIMIT live leases.
--
-- KEYS[1]  leases of the IP: sorted set, member = connection digest,
--          score = lease expiry in microseconds since the Unix epoch (Redis clock)
-- KEYS[2]  cooldown of the IP: string, end of the cooldown in microseconds since
--          the Unix epoch (Redis clock)
-- ARGV[1]  member: digest of the connection id
-- ARGV[2]  limit: most live leases the IP may hold (integer, >= 1)
-- ARGV[3]  lease TTL in microseconds (integer, >= 1000)
--
-- Returns {status, retry_after_us} with one of these statuses:
--   0  admitted, retry_after_us 0. A member with a live lease keeps its one slot.
--   1  rejected because a cooldown is running, retry_after_us = the time left.
--   2  rejected because the IP has LIMIT live leases, retry_after_us 0.
--
-- Expired leases are purged first. The sorted set's TTL follows its latest
-- lease expiry.

local member = ARGV[1]
local limit = tonumber(ARGV[2])
local lease_ttl_us = tonumber(ARGV[3])

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local cooldown_end = tonumber(redis.call('GET', KEYS[2]))
if cooldown_end and cooldown_end > now_us then
    return {1, cooldown_end - now_us}
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_us)

local current_expiry = redis.call('ZSCORE', KEYS[1], member)
if not current_expiry and redis.call('ZCARD', KEYS[1]) >= limit then
    return {2, 0}
end

redis.call('ZADD', KEYS[1], now_us + lease_ttl_us, member)

local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(latest[2]) - now_us) / 1000))
return {0, 0}
