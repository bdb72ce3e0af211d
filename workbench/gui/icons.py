"""Inline SVG icons (no icon font, no CDN): usable as Button(icon=...)."""

_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24" fill="none" '
        'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{}</svg>')

PLAY = _SVG.format('<path d="M7 4v16l13 -8z" fill="currentColor"/>')
PAUSE = _SVG.format('<rect x="6" y="5" width="4" height="14" rx="1" fill="currentColor"/>'
                    '<rect x="14" y="5" width="4" height="14" rx="1" fill="currentColor"/>')
STOP = _SVG.format('<rect x="5" y="5" width="14" height="14" rx="2" fill="currentColor"/>')
UNDO = _SVG.format('<path d="M9 14l-4 -4l4 -4"/><path d="M5 10h11a4 4 0 1 1 0 8h-1"/>')
REDO = _SVG.format('<path d="M15 14l4 -4l-4 -4"/><path d="M19 10h-11a4 4 0 1 0 0 8h1"/>')
COPY = _SVG.format('<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8v-2a2 2 0 0 0 -2 -2h-8a2 2 0 0 0 '
                   '-2 2v8a2 2 0 0 0 2 2h2"/>')
TRASH = _SVG.format('<path d="M4 7h16"/><path d="M10 11v6"/><path d="M14 11v6"/><path d="M5 7l1 12a2 2 0 0 0 2 2h8'
                    'a2 2 0 0 0 2 -2l1 -12"/><path d="M9 7v-3h6v3"/>')
CLEAR = _SVG.format('<path d="M4 4l16 16"/><path d="M20 4l-16 16"/>')
TIMER = _SVG.format('<circle cx="12" cy="13" r="7"/><path d="M12 10v3l2 2"/><path d="M10 3h4"/>')
DOWNLOAD = _SVG.format('<path d="M4 17v2a2 2 0 0 0 2 2h12a2 2 0 0 0 2 -2v-2"/><path d="M7 11l5 5l5 -5"/>'
                       '<path d="M12 4v12"/>')
REFRESH = _SVG.format('<path d="M20 11a8.1 8.1 0 0 0 -15.5 -2m-.5 -4v4h4"/><path d="M4 13a8.1 8.1 0 0 0 15.5 2'
                      'm.5 4v-4h-4"/>')
SCALE = _SVG.format('<path d="M7 20h10"/><path d="M6 6l6 -1l6 1"/><path d="M12 3v17"/>'
                    '<path d="M9 12l-3 -6l-3 6a3 3 0 0 0 6 0"/><path d="M21 12l-3 -6l-3 6a3 3 0 0 0 6 0"/>')
STEP = _SVG.format('<path d="M5 4v16l11 -8z" fill="currentColor"/><rect x="17" y="4" width="3" height="16" rx="1" '
                   'fill="currentColor"/>')
