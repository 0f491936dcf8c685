"""Simulation of labelled cryo-ET sub-tomograms and tomograms (the source data of training)."""
