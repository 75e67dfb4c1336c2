-- renew.lua: extend live connection leases. A lease that already expired is
-- removed, never revived, and a missing lease stays missing.
--
-- KEYS[i]    leases of the IP of pair i: sorted set, member = connection digest,
--            score = lease expiry in microseconds since the Unix epoch (Redis clock)
-- ARGV[1]    lease TTL in microseconds (integer, >= 1000)
-- ARGV[i+1]  member of pair i: digest of the connection id
--
-- Returns the number of leases extended. Every sorted set written gets a TTL
-- that follows its latest lease expiry.

local lease_ttl_us = tonumber(ARGV[1])

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local expiry = now_us + lease_ttl_us
local renewed = 0

for i = 1, #KEYS do
    local key = KEYS[i]
    local member = ARGV[i + 1]
    local score = tonumber(redis.call('ZSCORE', key, member))

    if score and score > now_us then
        redis.call('ZADD', key, 'XX', expiry, member)
        renewed = renewed + 1
    elseif score then
        redis.call('ZREM', key, member)
    end

    -- A renewed lease ends last, unless another member already ends later.
    local latest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    if #latest > 0 then
        local ttl_ms = math.ceil((tonumber(latest[2]) - now_us) / 1000)
        if ttl_ms > 0 then
            redis.call('PEXPIRE', key, ttl_ms)
        else
            redis.call('DEL', key)
        end
    end
end

return renewed
