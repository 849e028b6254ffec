/**
 * What-if (`#/whatif`): two questions about the live fleet, answered by the controller without changing or
 * recording anything. May these two VMs talk (and may they now)? May this VM start on this host now, and if not,
 * what stands in the way?
 */
import { useEffect } from 'react';
import { useFleet } from '../fleet.ts';
import { VmNames } from './whatif/fields.tsx';
import { ShareQuestion } from './whatif/share.tsx';
import { StartQuestion } from './whatif/start.tsx';
import './whatif/whatif.css';

export function WhatIfView() {
  const fleet = useFleet();
  useEffect(() => { document.title = 'What-if · hueguard'; }, []);
  return (
    <div className="whatif">
      <h1>What-if</h1>
      <p className="muted">Questions about the fleet as it is now. Nothing is changed or recorded; the answers follow the fleet while shown.</p>
      {fleet.policy === null && fleet.loaded && <p className="notice">No policy is published yet: the controller cannot answer.</p>}
      <VmNames vms={fleet.vms} />
      <div className="wi-grid">
        <ShareQuestion />
        <StartQuestion />
      </div>
    </div>
  );
}
