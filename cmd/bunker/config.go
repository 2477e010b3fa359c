package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/viper"

	"github.com/bunkerbackup/bunker/job"
)

// resolve applies environment variables and the config file to the global
// flags that were not given on the command line (flag > env > file > default).
func (g *globalOptions) resolve() error {
	v := viper.New()
	v.SetConfigType("yaml")
	for _, s := range settings {
		if err := v.BindPFlag(s.key, g.flags.Lookup(s.flag)); err != nil {
			return err
		}
		if err := v.BindEnv(s.key, s.env); err != nil {
			return err
		}
	}
	path, explicit := g.configPath()
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			if explicit || !errors.Is(err, os.ErrNotExist) {
				// The job file's own parser names file, line and key.
				if _, jerr := job.Load(path); jerr != nil && !errors.Is(jerr, os.ErrNotExist) {
					return jerr
				}
				return fmt.Errorf("read config file %s: %w", path, err)
			}
		} else {
			g.ConfigFile = path
			if err := checkConfigFile(path); err != nil {
				return err
			}
		}
	}
	g.v = v
	g.Repo = v.GetString("repository")
	g.PasswordFile = v.GetString("password-file")
	g.PasswordCommand = v.GetString("password-command")
	g.CacheDir = v.GetString("cache-dir")
	g.passwordFromEnv = os.Getenv("BUNKER_PASSWORD")
	if g.JSON {
		g.Quiet = true
	}
	if g.Verbose > 0 {
		for _, s := range settings {
			if src := g.source(s.key); src != "" {
				g.out.verbosef(1, "%s from %s", s.key, src)
			}
		}
	}
	return nil
}

// checkConfigFile rejects unknown, misspelt or malformed global settings in
// the config file, with file, line and key. The jobs section is checked by
// the job commands (job validate, job run), so that a broken job does not
// stop restores.
func checkConfigFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file %s: %w", path, err)
	}
	_, err = job.Parse(data, path)
	var all job.Errors
	if err == nil || !errors.As(err, &all) {
		return nil // not the job package's kind of error: viper read the file
	}
	var global job.Errors
	for _, e := range all {
		if e.Key == "jobs" || strings.HasPrefix(e.Key, "jobs.") || strings.HasPrefix(e.Key, "jobs[") {
			continue
		}
		if e.Key == "" && e.Line == 0 && strings.Contains(e.Msg, "empty") {
			continue // an empty file sets nothing, and that is fine here
		}
		global = append(global, e)
	}
	if len(global) == 0 {
		return nil
	}
	return withHint(fmt.Errorf("bad config file: %w", global), "fix %s; 'bunker config example' prints a commented config file", path)
}

// configPath returns the config file to read and whether the user named it
// (a named file must exist; the default locations are optional).
func (g *globalOptions) configPath() (string, bool) {
	if g.ConfigFile != "" {
		return g.ConfigFile, true
	}
	if p := os.Getenv("BUNKER_CONFIG"); p != "" {
		return p, true
	}
	if dir := os.Getenv("XDG_CONFIG_HOME"); dir != "" {
		p := filepath.Join(dir, "bunker", "config.yaml")
		if _, err := os.Stat(p); err == nil {
			return p, false
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".config", "bunker", "config.yaml")
		if _, err := os.Stat(p); err == nil {
			return p, false
		}
	}
	return "/etc/bunker/config.yaml", false
}

// source names where a setting's value came from: "flag", "environment",
// "config file" or "" when unset.
func (g *globalOptions) source(key string) string {
	for _, s := range settings {
		if s.key != key {
			continue
		}
		switch {
		case g.flags.Changed(s.flag):
			return "flag --" + s.flag
		case os.Getenv(s.env) != "":
			return "environment " + s.env
		case g.v != nil && g.v.InConfig(key):
			return "config file " + g.ConfigFile
		}
	}
	return ""
}
