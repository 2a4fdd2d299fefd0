"""DSP: pure signal processing (filters with carried state, spectra, phase).

Arrays + sampling rate in, results out; leading axis = session.
"""
