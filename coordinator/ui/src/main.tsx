/** Entry of the fleet page bundle (scripts/lib/ui.ts). */
import { render } from 'preact';
import { App } from './app.tsx';
import './style.css';

render(<App />, document.getElementById('app')!);
