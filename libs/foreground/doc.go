// Package foreground gives a runner started by make the terminal's
// foreground (deploy/local, deploy/cluster), so Ctrl-C stops it, and only
// it, cleanly.
package foreground
