-- Every node polls for devices revoked in the last moments, to close their
-- sockets even when the bus signal did not reach it (Redis down, or a
-- revocation made by another process such as the CLI).
CREATE INDEX devices_revoked_at ON devices (revoked_at) WHERE revoked_at IS NOT NULL
