"""Signed callbacks: a run's view POSTed to the URL its request named, when it ends."""
