-- refund.lua: give back COST tokens that consume.lua took from every bucket in
-- KEYS, after another cluster slot of the same request denied it.
--
-- GCRA: taking COST tokens moved a bucket's theoretical arrival time (TAT)
-- COST emission intervals ahead, so the refund moves it back by as much, but
-- never before now. The bucket then contains at most what it would contain had
-- the request never happened, even when time passed or other requests took tokens
-- in between. A missing key is a full bucket and is left alone.
--
-- KEYS[i]      token bucket i: string, TAT in seconds since the Unix epoch on
--              the Redis clock, written "SECONDS.FRACTION" with 15 decimals
-- ARGV[1]      cost: tokens to give back to each bucket (integer, >= 1)
-- ARGV[1+i]    emission interval of bucket i: nanoseconds per token (1e9 / rate)
--
-- Returns the number of buckets whose TAT moved. A bucket whose TAT reaches now
-- is full, so its key is deleted. Every other key gets a TTL equal to the time
-- until that bucket is full again.

local cost = tonumber(ARGV[1])

local NS_PER_S = 1e9
local FS_PER_NS = 1e6

local clock = redis.call('TIME')
local now_s = tonumber(clock[1])
local now_ns = tonumber(clock[2]) * 1000

-- Nanoseconds that the TAT lies ahead of now, or nil for a missing key. The
-- TAT is split into whole seconds and nanoseconds because a double cannot hold
-- epoch time in nanoseconds exactly.
local function debt_ns(key)
    local value = redis.call('GET', key)
    if not value then
        return nil
    end

    local tat_s, tat_fs = string.match(value, '^(%d+)%.(%d+)$')
    return (tonumber(tat_s) - now_s) * NS_PER_S + (tonumber(tat_fs) / FS_PER_NS - now_ns)
end

local function write_tat(key, debt)
    local total_ns = now_ns + debt
    local carry_s = math.floor(total_ns / NS_PER_S)
    local fs = math.floor((total_ns - carry_s * NS_PER_S) * FS_PER_NS + 0.5)
    if fs >= NS_PER_S * FS_PER_NS then
        carry_s = carry_s + 1
        fs = fs - NS_PER_S * FS_PER_NS
    end

    local value = string.format('%.0f.%015.0f', now_s + carry_s, fs)
    redis.call('SET', key, value, 'PX', math.ceil(debt / 1e6))
end

local moved = 0
for i = 1, #KEYS do
    local debt = debt_ns(KEYS[i])
    if debt and debt > 0 then
        local new_debt = debt - cost * tonumber(ARGV[1 + i])
        if new_debt > 0 then
            write_tat(KEYS[i], new_debt)
        else
            redis.call('DEL', KEYS[i])
        end
        moved = moved + 1
    end
end
return moved
