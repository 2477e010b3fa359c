package job

// Example returns a commented job file showing every setting; it is what
// "bunker config example" prints, and it validates.
func Example() string { return example }

const example = `# bunker job file.
# Looked up at --config, $BUNKER_CONFIG, $XDG_CONFIG_HOME/bunker/config.yaml
# or /etc/bunker/config.yaml. Flags and environment variables override the
# repository settings below. Check it with "bunker job validate".

# The repository every job backs up to.
repository: /srv/backup/bunker
# Where the password comes from (one of the two; never put it here).
password-file: /etc/bunker/password
# password-command: pass show backup/bunker
# Local cache of repository metadata.
# cache-dir: /var/cache/bunker

jobs:
  # A file tree, every night.
  home:
    paths:
      - /home
      - /etc
    excludes:
      - /home/*/.cache
      - "*.tmp"
    tags: [files, nightly]
    # Schedules: once 2026-12-01 01:00 | hourly | daily 02:00 |
    # weekly mon,thu 03:00 | monthly 1 04:00 | monthly third-mon 04:00
    # (first, second, third, fourth, last) | every 6h | every 15m,
    # then optionally "window 1h" (start at a random moment in that hour)
    # and "tz Europe/Berlin". A systemd calendar expression works too:
    # "OnCalendar=Mon..Fri 22:00".
    schedule: daily 02:00 window 1h
    # Applied to this job's snapshots after each backup (bunker forget).
    retention:
      keep-last: 3
      keep-daily: 7
      keep-weekly: 5
      keep-monthly: 12
      keep-yearly: 2
      keep-within: 2d
      keep-tag: [keep]
      # One snapshot per 4 hours within 48 hours (WITHIN:WIDTH), and
      # nothing older than 2 years even when a rule above keeps it
      # (protected snapshots and the minimum retention still stay).
      keep-within-every: [48h:4h]
      remove-older-than: 2y
    # Follow-up tasks after a backup: always, never, daily, weekly,
    # monthly or a duration such as 12h, 7d, 2w since the last good run.
    prune: weekly
    check: monthly
    # Restore-test the newest snapshot to scratch space and verify it.
    drill: monthly
    # "bunker status" calls the job overdue when its last good run is older.
    max-age: 26h
    # auto, max (smaller, slower) or off; default: the repository's setting.
    compression: auto
    hooks:
      # A failing before hook stops the run (after hooks still run).
      before:
        - command: systemctl stop my-app-writer
          timeout: 2m
      # after always runs; on-success / on-failure depending on the result.
      after:
        - command: systemctl start my-app-writer
          timeout: 2m
      on-failure:
        # Quote commands that contain ": ", or YAML reads them as a mapping.
        - 'logger -t bunker "job $BUNKER_JOB failed: $BUNKER_ERROR"'
    notify:
      # Runs after every run with BUNKER_JOB, BUNKER_STATUS, BUNKER_START,
      # BUNKER_END, BUNKER_DURATION, BUNKER_SNAPSHOT, BUNKER_BYTES, BUNKER_ERROR.
      command: /usr/local/bin/report-backup
      # A healthchecks-style URL: pinged at URL/start, URL (success), URL/fail.
      url: https://hc-ping.com/your-check-uuid
      timeout: 30s
    enabled: true

  # Virtual machine disks, third Monday of the month, Berlin time.
  vm-disks:
    disks:
      - path: /var/lib/libvirt/images/web.qcow2
      - path: /dev/vg0/db-snapshot
        name: db
        format: device
    tags: [vm]
    schedule: monthly third-mon 04:00 tz Europe/Berlin
    retention:
      keep-monthly: 6
    check: always

  # Defined but switched off: "bunker job run" says so and does nothing.
  archive:
    paths: [/srv/archive]
    schedule: once 2026-12-01 01:00
    enabled: false
`
