package retention

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var resticFixture = flag.Bool("restic", false, "regenerate testdata/restic_forget.json by running restic on the generated history (slow)")

// resticPolicies are the policies compared with restic: only rules restic
// has, in restic's flag syntax (restic has no "w" unit).
var resticPolicies = map[string][]string{
	"last10":           {"--keep-last", "10"},
	"hourly48":         {"--keep-hourly", "48"},
	"calendar":         {"--keep-daily", "14", "--keep-weekly", "8", "--keep-monthly", "6", "--keep-yearly", "3"},
	"weekly30":         {"--keep-weekly", "30"},
	"within_mixed":     {"--keep-within", "3d", "--keep-within-daily", "14d", "--keep-within-weekly", "2m", "--keep-within-monthly", "1y"},
	"within_hourly":    {"--keep-within-hourly", "1d12h", "--keep-within-yearly", "2y"},
	"tags_last":        {"--keep-last", "3", "--keep-tag", "monthly", "--keep-tag", "weekly-ref"},
	"daily_and_tag":    {"--keep-daily", "5", "--keep-tag", "monthly"},
	"hourly_monthly":   {"--keep-hourly", "30", "--keep-monthly", "3"},
	"within_one_week":  {"--keep-within", "7d"},
	"hourly_all":       {"--keep-hourly", "5000"}, // every hour bucket, both DST changes included
	"daily_weekly_all": {"--keep-daily", "1000", "--keep-weekly", "1000"},
}

// policyFromResticFlags builds the Policy restic's flags describe.
func policyFromResticFlags(t *testing.T, args []string) Policy {
	t.Helper()
	var p Policy
	for i := 0; i < len(args); i += 2 {
		v := args[i+1]
		counts := map[string]*int{"--keep-last": &p.Last, "--keep-hourly": &p.Hourly, "--keep-daily": &p.Daily, "--keep-weekly": &p.Weekly, "--keep-monthly": &p.Monthly, "--keep-yearly": &p.Yearly}
		durs := map[string]*Duration{"--keep-within": &p.Within, "--keep-within-hourly": &p.WithinHourly, "--keep-within-daily": &p.WithinDaily, "--keep-within-weekly": &p.WithinWeekly, "--keep-within-monthly": &p.WithinMonthly, "--keep-within-yearly": &p.WithinYearly}
		switch {
		case counts[args[i]] != nil:
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			*counts[args[i]] = n
		case durs[args[i]] != nil:
			*durs[args[i]] = MustParseDuration(v)
		case args[i] == "--keep-tag":
			l, err := ParseTagList(v)
			if err != nil {
				t.Fatal(err)
			}
			p.Tags = append(p.Tags, l)
		default:
			t.Fatalf("unknown flag %s", args[i])
		}
	}
	return p
}

type resticFixtureFile struct {
	Restic   string              `json:"restic"`
	Policies map[string][]string `json:"policies"` // name -> kept snapshot times (RFC 3339)
}

// TestAgainstRestic compares the snapshots Apply keeps with what restic
// forget kept on the same history (recorded in testdata/restic_forget.json
// by go test -run TestAgainstRestic -restic).
func TestAgainstRestic(t *testing.T) {
	snaps := history(t)
	path := filepath.Join("testdata", "restic_forget.json")
	if *resticFixture {
		writeResticFixture(t, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fx resticFixtureFile
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.Policies) != len(resticPolicies) {
		t.Fatalf("fixture has %d policies, want %d (regenerate with -restic)", len(fx.Policies), len(resticPolicies))
	}
	for name, args := range resticPolicies {
		t.Run(name, func(t *testing.T) {
			want, ok := fx.Policies[name]
			if !ok {
				t.Fatalf("policy %s missing in fixture (regenerate with -restic)", name)
			}
			res, err := Apply(snaps, policyFromResticFlags(t, args), Options{Now: time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC), GroupBy: DefaultGroupBy, AllowEmpty: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sn := range res.Keep() {
				got = append(got, sn.Time.UTC().Format(time.RFC3339))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("keep differs from restic: %d vs %d snapshots\nonly ours: %v\nonly restic: %v", len(got), len(want), diff(got, want), diff(want, got))
			}
		})
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func writeResticFixture(t *testing.T, path string) {
	restic, err := exec.LookPath("restic")
	if err != nil {
		t.Fatal("restic not found")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(tz string, args ...string) []byte {
		cmd := exec.Command(restic, args...)
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=fixture", "RESTIC_REPOSITORY="+filepath.Join(dir, "repo"), "TZ="+tz, "RESTIC_CACHE_DIR="+filepath.Join(dir, "cache"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("restic %v: %v", args, err)
		}
		return out
	}
	run("UTC", "init", "-q")
	snaps := history(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, sn := range snaps {
		// A fixed-offset zone makes restic record exactly this offset, also
		// for the repeated hour of the autumn change.
		_, off := sn.Time.Zone()
		tz := fmt.Sprintf("Etc/GMT%+d", -off/3600)
		args := []string{"backup", "-q", "--host", "web1", "--time", sn.Time.Format("2006-01-02 15:04:05")}
		for _, tag := range sn.Tags {
			args = append(args, "--tag", tag)
		}
		args = append(args, src)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			run(tz, args...)
		}()
	}
	wg.Wait()
	fx := resticFixtureFile{Restic: strings.TrimSpace(string(run("UTC", "version"))), Policies: map[string][]string{}}
	for name, args := range resticPolicies {
		out := run("UTC", append([]string{"forget", "--dry-run", "--json", "--group-by", "host,paths"}, args...)...)
		var groups []struct {
			Keep []struct {
				Time time.Time `json:"time"`
			} `json:"keep"`
		}
		if err := json.Unmarshal(out, &groups); err != nil {
			t.Fatalf("decode restic forget output: %v", err)
		}
		kept := []string{}
		for _, g := range groups {
			for _, k := range g.Keep {
				kept = append(kept, k.Time.UTC().Format(time.RFC3339))
			}
		}
		slices.Sort(kept)
		fx.Policies[name] = kept
	}
	b, err := json.MarshalIndent(fx, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
