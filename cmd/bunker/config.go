package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/viper"
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
				return fmt.Errorf("read config file %s: %w", path, err)
			}
		} else {
			g.ConfigFile = path
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
